#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/text.h"

namespace mlaas {

namespace {

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v";

// The pattern formatter, given every message with its control characters escaped
// (EscapeControlCharacters): whatever a message quotes (a request field in a task's error, a
// file's line), the log keeps one line per message and no terminal sequence.
class EscapingFormatter final : public spdlog::formatter {
 public:
  EscapingFormatter() : inner_(std::make_unique<spdlog::pattern_formatter>(kPattern)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    bool clean = IsValidUtf8(payload);
    for (size_t i = 0; clean && i < payload.size(); ++i) clean = ControlCharBytes(payload, i) == 0;
    if (clean) return inner_->format(msg, dest);
    const std::string escaped = EscapeControlCharacters(payload);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->format(copy, dest);
    msg.color_range_start = copy.color_range_start;  // the colour sink reads them from `msg`
    msg.color_range_end = copy.color_range_end;
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<EscapingFormatter>(); }

 private:
  std::unique_ptr<spdlog::pattern_formatter> inner_;
};

}  // namespace

Status InitLogging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + level +
                               "' (use trace, debug, info, warn, error, critical or off)",
                           "log_level");
  }
  spdlog::drop("mlaas");
  auto logger = spdlog::stderr_color_mt("mlaas");
  logger->set_formatter(std::make_unique<EscapingFormatter>());
  spdlog::set_default_logger(logger);
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::warn);
  return Status::Ok();
}

}  // namespace mlaas

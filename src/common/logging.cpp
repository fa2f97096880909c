#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace mlaas {

Status InitLogging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return InvalidArgument("unknown log level '" + level +
                               "' (use trace, debug, info, warn, error, critical or off)",
                           "log_level");
  }
  spdlog::drop("mlaas");
  auto logger = spdlog::stderr_color_mt("mlaas");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::warn);
  return Status::Ok();
}

}  // namespace mlaas

// Wall-clock helpers. Times are milliseconds since the Unix epoch (UTC) in int64_t.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mlaas {

int64_t NowMs();

// "2023-09-13T06:30:48" — UTC, second precision, the form SPEC.md's training output uses.
std::string FormatIsoUtc(int64_t epoch_ms);

// Parses what FormatIsoUtc writes (a trailing "Z" is accepted).
std::optional<int64_t> ParseIsoUtc(const std::string& text);

// Duration in Python's timedelta form: "0:00:05", "2:20:31", "1 day, 2:20:31",
// "3 days, 0:00:00". Negative durations are clamped to zero.
std::string FormatElapsed(int64_t duration_ms);

}  // namespace mlaas

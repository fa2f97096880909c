// Process-wide logging setup (spdlog). Modules log through spdlog's default logger.
#pragma once

#include <string>

#include "common/status.h"

namespace mlaas {

// Sets the default logger's level from "trace|debug|info|warn|error|critical|off".
Status InitLogging(const std::string& level);

}  // namespace mlaas

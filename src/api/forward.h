// Sending a request to another API server of the same database: a server asked for a deployment
// it does not hold (one pinned to other servers' labels, or still loading here) hands the request
// to a server that serves it (serve::DeploymentManager::Locate) and copies that server's answer.
#pragma once

#include <string>
#include <vector>

#include "api/router.h"

namespace mlaas::api {

// The header a forwarded request carries: a server never forwards such a request again.
inline constexpr const char* kForwardedHeader = "X-Mlaas-Forwarded";

// Whether `ctx` arrived from another server (it is answered here, whatever the answer).
bool WasForwarded(const RequestContext& ctx);

// Sends ctx's request (its method, path, JSON body and Authorization) to one of `urls` over a
// kept-alive connection, trying the next server when one cannot be connected to, and writes its
// answer into ctx (503 when it took the request but did not answer; a request that failed on a
// reused connection, which the server may have closed meanwhile, is sent once more on a new
// one: what is forwarded, model metadata and inference, changes nothing). False when none
// could be connected to (nothing written). Between servers requests, tokens included, travel in plain
// HTTP: the servers' advertise URLs belong on a network only they reach (docs/serving.md).
bool Forward(RequestContext& ctx, const std::vector<std::string>& urls);

}  // namespace mlaas::api

// Host names and addresses: which name is this machine's own loopback.
#pragma once

#include <string>
#include <string_view>

namespace mlaas {

// True when `host` names this machine over loopback: "localhost" or a name under ".localhost"
// (RFC 6761), an IPv4 address in 127.0.0.0/8 written as a dotted quad, or the IPv6 loopback
// (::1, also as an IPv4-mapped 127/8 address), with or without the brackets of a URL.
// Case-insensitive. A name that only starts like one ("127.lab.example", "localhost.evil")
// is not. The one rule for auth auto, the Host check of a server with auth off, the advertised
// address and the data-parallel group's device.
bool IsLoopbackHost(std::string_view host);

// The host of an authority ("host:port", "[::1]:8080" -> "[::1]", "name" -> "name").
std::string HostOfAuthority(std::string_view authority);

}  // namespace mlaas

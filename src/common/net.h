// Host names and addresses: which name is this machine's own loopback.
#pragma once

#include <string>
#include <string_view>

namespace mlaas {

// True when a listen or connect address is this machine's loopback: "localhost", an IPv4
// address in 127.0.0.0/8 written as a dotted quad, or the IPv6 loopback (::1, also as an
// IPv4-mapped 127/8 address), with or without the brackets of a URL; case-insensitive. A name
// under ".localhost" is not: the resolver sends it to DNS, which may answer any address. The
// rule for auth auto (auth off only on loopback), the data-parallel group's device and the
// advertised-address warning.
bool IsLoopbackAddress(std::string_view host);

// IsLoopbackAddress, or a name under ".localhost" (RFC 6761), which browsers resolve to
// loopback themselves: the Host header a browser sends for a page on this machine. A name that
// only starts like one ("127.lab.example", "localhost.evil") is neither.
bool IsLoopbackHost(std::string_view host);

// The host of an authority ("host:port", "[::1]:8080" -> "[::1]", "name" -> "name").
std::string HostOfAuthority(std::string_view authority);

}  // namespace mlaas

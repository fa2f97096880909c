#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/text.h"

namespace mlaas {
namespace {

// `host` lowercased, without the brackets of a URL's IPv6 address.
std::string Bare(std::string_view host) {
  std::string h = ToLower(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return h;
}

// The loopback rule on a bare host; names under `.localhost` count only where `subdomains` is set.
bool IsLoopbackBare(const std::string& h, bool subdomains) {
  if (h.find('\0') != std::string::npos) return false;
  if (h == "localhost") return true;
  if (subdomains && h.size() > 10 && h.ends_with(".localhost")) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return false;
}

}  // namespace

bool IsLoopbackAddress(std::string_view host) { return IsLoopbackBare(Bare(host), false); }

bool IsLoopbackHost(std::string_view host) { return IsLoopbackBare(Bare(host), true); }

std::string HostOfAuthority(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    return std::string(close == std::string_view::npos ? authority : authority.substr(0, close + 1));
  }
  return std::string(authority.substr(0, authority.find(':')));
}

}  // namespace mlaas

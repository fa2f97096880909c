#include "common/net.h"

#include <gtest/gtest.h>

#include <string>

namespace mlaas {
namespace {

TEST(NetTest, LoopbackAddresses) {
  for (const char* host : {"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]",
                           "0:0:0:0:0:0:0:1", "[::ffff:127.0.0.1]", "[::FFFF:7F00:1]"}) {
    EXPECT_TRUE(IsLoopbackAddress(host)) << host;
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

TEST(NetTest, NamesUnderLocalhostAreLoopbackOnlyAsABrowsersHost) {
  // A browser resolves them to loopback itself; the system resolver asks DNS, which may answer
  // a public address: a server listening on one gets auth (auth auto) like any other name.
  for (const char* host : {"app.localhost", "A.B.LOCALHOST"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
    EXPECT_FALSE(IsLoopbackAddress(host)) << host;
  }
}

TEST(NetTest, NamesThatOnlyLookLikeLoopbackAreNot) {
  for (const char* host : {"", "0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "127.lab.example",
                           "127.0.0.1.nip.io", "localhost.evil.example", "evil-localhost", ".localhost", "localhost.",
                           "127.0.0.256", "127.0.0.1 ", "127.+1.0.1", "127.1", "0177.0.0.1", "[::1", "::2",
                           "::127.0.0.1", "[::ffff:10.0.0.1]"}) {
    EXPECT_FALSE(IsLoopbackAddress(host)) << host;
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0.evil.example", 23)));
  EXPECT_FALSE(IsLoopbackHost(std::string("evil\0.localhost", 15)));
}

TEST(NetTest, HostOfAnAuthorityDropsThePort) {
  EXPECT_EQ(HostOfAuthority("127.0.0.1:8080"), "127.0.0.1");
  EXPECT_EQ(HostOfAuthority("[::1]:8080"), "[::1]");
  EXPECT_EQ(HostOfAuthority("[::1]"), "[::1]");
  EXPECT_EQ(HostOfAuthority("[::1]x"), "[::1]");
  EXPECT_EQ(HostOfAuthority("example.org"), "example.org");
  EXPECT_EQ(HostOfAuthority(""), "");
  EXPECT_FALSE(IsLoopbackHost(HostOfAuthority("[::1")));
}

}  // namespace
}  // namespace mlaas

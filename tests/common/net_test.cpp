#include "common/net.h"

#include <gtest/gtest.h>

#include <string>

namespace mlaas {
namespace {

TEST(NetTest, LoopbackNamesAndAddresses) {
  for (const char* host : {"localhost", "LocalHost", "app.localhost", "127.0.0.1", "127.1.2.3", "127.255.255.255",
                           "::1", "[::1]", "0:0:0:0:0:0:0:1", "[::ffff:127.0.0.1]"})
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
}

TEST(NetTest, NamesThatOnlyLookLikeLoopbackAreNot) {
  for (const char* host : {"", "0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "127.lab.example",
                           "127.0.0.1.nip.io", "localhost.evil.example", "evil-localhost", ".localhost",
                           "127.0.0.256", "127.0.0.1 ", "127.+1.0.1", "127.1", "[::1", "::2", "[::ffff:10.0.0.1]"})
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  EXPECT_FALSE(IsLoopbackHost(std::string("127.0.0.1\0.evil.example", 23)));
}

TEST(NetTest, HostOfAnAuthorityDropsThePort) {
  EXPECT_EQ(HostOfAuthority("127.0.0.1:8080"), "127.0.0.1");
  EXPECT_EQ(HostOfAuthority("[::1]:8080"), "[::1]");
  EXPECT_EQ(HostOfAuthority("[::1]"), "[::1]");
  EXPECT_EQ(HostOfAuthority("example.org"), "example.org");
  EXPECT_EQ(HostOfAuthority(""), "");
  EXPECT_FALSE(IsLoopbackHost(HostOfAuthority("[::1")));
}

}  // namespace
}  // namespace mlaas

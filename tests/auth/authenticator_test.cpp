#include "auth/authenticator.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>

#include "testutil/temp_dir.h"

namespace mlaas::auth {
namespace {

using mlaas::testing::TempDir;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metadata::StoreOptions o;
    o.url = (dir_ / "mlaas.db").string();
    store_ = std::move(metadata::OpenAccountStore(o)).value();
    auth_ = std::make_unique<Authenticator>(*store_, [this] { return now_.load(); });
  }
  TempDir dir_;
  std::atomic<int64_t> now_{1'000'000};
  std::unique_ptr<metadata::AccountStore> store_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, AnIssuedTokenAuthenticatesItsUserWithItsScopesAndIsNeverStored) {
  auto issued = auth_->Issue("alice", {"read", "write"}, 0, "laptop");
  ASSERT_TRUE(issued.has_value()) << issued.error().ToString();
  EXPECT_EQ(issued->token.rfind("mlaas_" + issued->record.id + "_", 0), 0u) << issued->token;
  EXPECT_EQ(issued->token.size(), 6 + 16 + 1 + 64u) << "a 256-bit secret";
  auto p = auth_->Authenticate(issued->token);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_TRUE(p->Has(Scope::kRead));
  EXPECT_TRUE(p->Has(Scope::kWrite));
  EXPECT_FALSE(p->Has(Scope::kAdmin));
  // The database holds a hash, never the secret.
  auto stored = store_->GetToken(issued->record.id);
  const std::string secret = issued->token.substr(issued->token.rfind('_') + 1);
  EXPECT_EQ(stored->secret_sha256, Sha256Hex(secret));
  std::ifstream db(dir_ / "mlaas.db", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find(secret), std::string::npos);
}

TEST_F(AuthenticatorTest, UnknownMalformedAlteredExpiredAndRevokedTokensAreRefusedAlike) {
  auto t = std::move(auth_->Issue("bob", {"read"}, 60, "")).value();
  std::string altered = t.token;
  altered.back() = altered.back() == '0' ? '1' : '0';
  for (const std::string& bad : {std::string(""), std::string("mlaas_"), std::string("mlaas__x"), std::string("Bearer x"),
                                 altered, std::string("mlaas_ffffffffffffffff_00"), std::string(300, 'a')}) {
    auto p = auth_->Authenticate(bad);
    ASSERT_FALSE(p.has_value()) << bad;
    EXPECT_EQ(p.error().code(), StatusCode::kUnauthenticated) << bad;
  }
  ASSERT_TRUE(auth_->Authenticate(t.token).has_value());
  now_ += 61'000;
  EXPECT_EQ(auth_->Authenticate(t.token).error().code(), StatusCode::kUnauthenticated) << "expired, even if cached";
  auto u = std::move(auth_->Issue("bob", {"read"}, 0, "")).value();
  ASSERT_TRUE(auth_->Authenticate(u.token).has_value());  // now cached
  ASSERT_TRUE(auth_->Revoke(u.record.id).ok());
  EXPECT_EQ(auth_->Authenticate(u.token).error().code(), StatusCode::kUnauthenticated) << "revoked at once";
}

TEST_F(AuthenticatorTest, IssuingChecksUserScopesAndExpiry) {
  EXPECT_EQ(auth_->Issue("Alice", {"read"}, 0, "").error().field(), "user");
  EXPECT_EQ(auth_->Issue("a/b", {"read"}, 0, "").error().field(), "user");
  EXPECT_EQ(auth_->Issue(std::string(65, 'a'), {"read"}, 0, "").error().field(), "user");
  EXPECT_EQ(auth_->Issue("alice", {}, 0, "").error().field(), "scopes");
  EXPECT_EQ(auth_->Issue("alice", {"root"}, 0, "").error().field(), "scopes");
  EXPECT_EQ(auth_->Issue("alice", {"read"}, -1, "").error().field(), "expires_in");
  EXPECT_TRUE(auth_->Issue("a.b_c-9", {"admin", "admin"}, 0, "").has_value());
}

TEST_F(AuthenticatorTest, WriteImpliesReadAndAdminImpliesEverything) {
  Principal w{"u", {Scope::kWrite}, ""};
  EXPECT_TRUE(w.Has(Scope::kRead));
  EXPECT_FALSE(w.Has(Scope::kAdmin));
  Principal a{"u", {Scope::kAdmin}, ""};
  EXPECT_TRUE(a.Has(Scope::kRead) && a.Has(Scope::kWrite) && a.Has(Scope::kAdmin));
  Principal r{"u", {Scope::kRead}, ""};
  EXPECT_FALSE(r.Has(Scope::kWrite));
  EXPECT_TRUE(Principal{}.anonymous());
}

TEST_F(AuthenticatorTest, TheBootstrapTokenIsWrittenOnceToAPrivateFile) {
  const auto file = dir_ / "admin-token";
  auto where = auth_->Bootstrap("", file);
  ASSERT_TRUE(where.has_value()) << where.error().ToString();
  std::string token;
  std::getline(std::ifstream(file), token);
  EXPECT_EQ(where->find(token), std::string::npos) << "the log line never holds the token";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto p = auth_->Authenticate(token);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->user, "admin");
  EXPECT_TRUE(p->Has(Scope::kAdmin));
  // A second start keeps the token (and the file).
  ASSERT_TRUE(auth_->Bootstrap("", file).has_value());
  std::string again;
  std::getline(std::ifstream(file), again);
  EXPECT_EQ(again, token);
  EXPECT_TRUE(auth_->Authenticate(token).has_value());
}

TEST_F(AuthenticatorTest, AnAdminTokenFromTheEnvironmentReplacesTheRecordedOne) {
  ASSERT_TRUE(auth_->Bootstrap("", dir_ / "admin-token").has_value());
  std::string generated;
  std::getline(std::ifstream(dir_ / "admin-token"), generated);
  ASSERT_TRUE(auth_->Bootstrap("correct-horse-battery-staple", dir_ / "admin-token").has_value());
  EXPECT_TRUE(auth_->Authenticate("correct-horse-battery-staple").has_value());
  EXPECT_FALSE(auth_->Authenticate(generated).has_value()) << "the old admin token no longer works";
  EXPECT_EQ(auth_->Bootstrap("short", dir_ / "admin-token").error().field(), "MLAAS_ADMIN_TOKEN");
}

}  // namespace
}  // namespace mlaas::auth

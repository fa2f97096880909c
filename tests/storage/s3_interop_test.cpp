// Our S3 requests against what the AWS tools say. s3rver does not check signatures, so a proxy
// in front of it (sigv4_proxy.py) recomputes every request's SigV4 signature with Debian's
// botocore and refuses any that does not verify; the same proxy verifies the AWS CLI's own
// requests, which shows the check itself is right. Then Debian's AWS CLI (`aws s3`) and this
// store read each other's objects, multipart ones included, and a wrong secret is refused.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "storage/s3_object_store.h"
#include "testutil/s3rver.h"
#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::TempDir;
using nlohmann::json;

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + i / 4093) & 0xff);
  return s;
}

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class S3InteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!mlaas::testing::HaveS3rver()) GTEST_SKIP() << "s3rver is not installed (scripts/install-deps.sh)";
    if (std::system("/usr/bin/python3 -c 'import botocore' 2>/dev/null") != 0 || !fs::exists("/usr/bin/aws"))
      GTEST_SKIP() << "python3-botocore and awscli are not installed (scripts/install-deps.sh)";
    dir_ = new TempDir();
    server_ = new mlaas::testing::S3rver();
    Status started = server_->Start(dir_->path(), {"interop"});
    ASSERT_TRUE(started.ok()) << started.ToString();
    const fs::path port_file = dir_->path() / "proxy.port";
    const std::string cmd = "/usr/bin/python3 " MLAAS_SOURCE_DIR "/tests/storage/sigv4_proxy.py --upstream " +
                            server_->endpoint() + " --port-file " + port_file.string() + " & echo $! > " +
                            (dir_->path() / "proxy.pid").string();
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::exists(port_file)) << "the signature proxy did not start";
    proxy_port_ = std::stoi(ReadAll(port_file));
  }
  static void TearDownTestSuite() {
    if (dir_) {
      const std::string pid = ReadAll(dir_->path() / "proxy.pid");
      if (!pid.empty()) (void)std::system(("kill " + pid).c_str());
    }
    delete server_;
    delete dir_;
  }

  // Through the proxy.
  static S3Options Options(const std::string& secret = "S3RVER") {
    S3Options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(proxy_port_);
    o.access_key = "S3RVER";
    o.secret_key = secret;
    o.part_bytes = 5u << 20;
    o.read_chunk_bytes = 3u << 20;
    o.retries = 0;
    return o;
  }
  static json Report() {
    httplib::Client c("127.0.0.1", proxy_port_);
    auto r = c.Get("/__sigv4__");
    return r && r->status == 200 ? json::parse(r->body) : json();
  }
  // `aws --endpoint-url <proxy> s3 <args>`, with only the test's credentials and config.
  static int Aws(const std::string& args, std::string* out = nullptr) {
    const fs::path log = dir_->path() / "aws.out";
    const std::string cmd = "env -i PATH=/usr/bin:/bin HOME=" + dir_->path().string() +
                            " AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1"
                            " AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null"
                            " /usr/bin/aws --endpoint-url http://127.0.0.1:" +
                            std::to_string(proxy_port_) + " s3 " + args + " > " + log.string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (out) *out = ReadAll(log);
    return rc;
  }

  static inline TempDir* dir_ = nullptr;
  static inline mlaas::testing::S3rver* server_ = nullptr;
  static inline int proxy_port_ = 0;
};

TEST_F(S3InteropTest, EveryRequestWeSignVerifiesWithBotocore) {
  S3ObjectStore s3(Options());
  const int before = Report().value("verified", 0);
  // Keys that need encoding in paths and in listing queries.
  const std::vector<std::string> keys = {"interop/ours/plain.txt", "interop/ours/with space+plus=eq&amp.txt",
                                         "interop/ours/ünïcödé/ключ.txt", "interop/ours/tilde~star*(paren)!.txt"};
  for (const auto& k : keys) {
    auto put = s3.PutString(k, k);
    ASSERT_TRUE(put.has_value()) << k << ": " << put.error().ToString() << Report().dump(1);
    auto back = s3.GetString(k);
    ASSERT_TRUE(back.has_value()) << k << ": " << back.error().ToString();
    EXPECT_EQ(*back, k);
  }
  // Multipart (three parts, in flight together), ranged and parallel reads.
  const std::string big = Pattern(12'000'000, 1);
  auto w = s3.Create("interop/ours/big file.bin");
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE((*w)->Write(big).ok());
  auto committed = (*w)->Commit();
  ASSERT_TRUE(committed.has_value()) << committed.error().ToString();
  auto stat = s3.Stat("interop/ours/big file.bin");
  ASSERT_TRUE(stat.has_value());
  TempDir local;
  ASSERT_TRUE(s3.Download(*stat, local.path() / "big").ok());
  EXPECT_TRUE(ReadAll(local.path() / "big") == big);
  // Listings: prefixes with odd characters, a delimiter, continuation tokens, start-after.
  ListOptions l{.prefix = "interop/ours/", .delimiter = "", .max_keys = 2, .continuation_token = "", .start_after = ""};
  size_t seen = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = s3.List(l);
    ASSERT_TRUE(page.has_value()) << page.error().ToString() << Report().dump(1);
    seen += page->objects.size();
    if (!page->is_truncated) break;
    l.continuation_token = page->next_continuation_token;
  }
  EXPECT_EQ(seen, keys.size() + 1);
  auto odd = s3.List({.prefix = "interop/ours/with space+", .delimiter = "/", .max_keys = 10, .continuation_token = "",
                      .start_after = "interop/ours/a"});
  ASSERT_TRUE(odd.has_value()) << odd.error().ToString();
  EXPECT_EQ(odd->objects.size(), 1u);
  // A session token is signed too.
  S3Options with_token = Options();
  with_token.session_token = "FQoGZXIvYXdzEXAMPLETOKEN+/=";
  EXPECT_TRUE(S3ObjectStore(with_token).PutString("interop/ours/token.txt", "t").has_value());
  // Deletes, one and in a batch (token.txt stays: s3rver races removing a directory that a
  // batch empties).
  ASSERT_TRUE(s3.Delete(keys[0]).ok());
  Status deleted = s3.DeleteMany({keys[1], keys[2], keys[3], "interop/ours/big file.bin"});
  ASSERT_TRUE(deleted.ok()) << deleted.ToString() << Report().dump(1);

  const json report = Report();
  EXPECT_TRUE(report["refused"].empty()) << report.dump(1);
  EXPECT_GE(report.value("verified", 0) - before, 25) << report.dump(1);
}

TEST_F(S3InteropTest, AWrongSecretIsRefusedWithS3sError) {
  const size_t before = Report()["refused"].size();
  S3ObjectStore s3(Options("not-the-secret"));
  auto put = s3.PutString("interop/denied.txt", "x");
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code(), StatusCode::kPermissionDenied) << put.error().ToString();
  EXPECT_NE(put.error().message().find("SignatureDoesNotMatch"), std::string::npos) << put.error().ToString();
  EXPECT_EQ(put.error().message().find("not-the-secret"), std::string::npos) << "secrets are never in errors";
  EXPECT_EQ(Report()["refused"].size(), before + 1);
}

TEST_F(S3InteropTest, TheAwsCliAndThisStoreReadEachOthersObjects) {
  S3ObjectStore s3(Options());
  const size_t refused_before = Report()["refused"].size();
  TempDir local;
  // The AWS CLI writes (20 MB: a multipart upload of its own 8 MB parts), we read.
  const std::string theirs = Pattern(20'000'000, 2);
  std::ofstream(local.path() / "theirs.bin", std::ios::binary) << theirs;
  std::string out;
  ASSERT_EQ(Aws("cp " + (local.path() / "theirs.bin").string() + " s3://interop/from-aws/theirs.bin", &out), 0) << out;
  auto stat = s3.Stat("interop/from-aws/theirs.bin");
  ASSERT_TRUE(stat.has_value()) << stat.error().ToString();
  EXPECT_EQ(stat->size, theirs.size());
  ASSERT_TRUE(s3.Download(*stat, local.path() / "theirs-by-us.bin").ok());
  EXPECT_TRUE(ReadAll(local.path() / "theirs-by-us.bin") == theirs);
  auto small_up = Aws("cp " + (local.path() / "theirs.bin").string() + " s3://interop/from-aws/dir/x.bin", &out);
  ASSERT_EQ(small_up, 0) << out;
  auto listed = s3.List({.prefix = "interop/from-aws/", .delimiter = "/", .max_keys = 100, .continuation_token = "", .start_after = ""});
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->objects.size(), 1u);
  EXPECT_EQ(listed->common_prefixes, std::vector<std::string>{"interop/from-aws/dir/"});

  // We write (a multipart upload of 5 MiB parts, and a one-PUT object), the AWS CLI reads.
  const std::string ours = Pattern(13'000'000, 3);
  std::ofstream(local.path() / "ours.bin", std::ios::binary) << ours;
  ASSERT_TRUE(s3.PutFile("interop/from-mlaas/ours.bin", local.path() / "ours.bin").ok());
  ASSERT_TRUE(s3.PutString("interop/from-mlaas/small.txt", "small").has_value());
  ASSERT_EQ(Aws("cp s3://interop/from-mlaas/ours.bin " + (local.path() / "ours-by-aws.bin").string(), &out), 0) << out;
  EXPECT_TRUE(ReadAll(local.path() / "ours-by-aws.bin") == ours);
  ASSERT_EQ(Aws("ls s3://interop/from-mlaas/", &out), 0) << out;
  EXPECT_NE(out.find("ours.bin"), std::string::npos) << out;
  EXPECT_NE(out.find("small.txt"), std::string::npos) << out;
  EXPECT_NE(out.find("13000000"), std::string::npos) << out;

  // The proxy verified the AWS CLI's requests as it verified ours: the check is the real one.
  const json report = Report();
  EXPECT_EQ(report["refused"].size(), refused_before) << report.dump(1);
}

}  // namespace
}  // namespace mlaas::storage

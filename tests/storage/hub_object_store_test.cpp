// The Hugging Face Hub store against a hub-shaped HTTP server on loopback (written here): a
// model repo listed by the model API, files from /resolve/ (one through a redirect to a blob
// store, one whose first download breaks off and resumes), a gated repo (401), a missing file,
// the hub's cache layout, SHA-256 checks and offline mode.
#include "storage/hub_object_store.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <thread>

#include "common/random.h"
#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::TempDir;

std::string Sha256(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(d), n));
}

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kConfig = R"({"model_type": "bert"})";
const std::string kWeights = std::string(300000, 'w') + "end";

class FakeHub {
 public:
  FakeHub() {
    server_.Get("/api/models/org/tiny/revision/main", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"id": "org/tiny", "sha": ")" + kCommit +
                          R"(", "siblings": [{"rfilename": "config.json"}, {"rfilename": "model.safetensors"}]})",
                      "application/json");
    });
    server_.Get("/api/models/org/gated/revision/main", [](const httplib::Request&, httplib::Response& res) { res.status = 401; });
    auto file = [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      res.set_header("X-Repo-Commit", kCommit);
      if (name == "config.json") {
        res.set_header("ETag", "\"cfg-etag-1\"");
        if (req.method != "HEAD") res.set_content(kConfig, "application/json");
        else res.set_header("Content-Length", std::to_string(kConfig.size()));
        return;
      }
      if (name == "model.safetensors") {  // large files: a redirect to the blob store, the ETag their SHA-256
        res.set_header("X-Linked-Etag", "\"" + Sha256(kWeights) + "\"");
        res.set_redirect("/blobs/weights");
        return;
      }
      res.status = 404;
    };
    server_.Get(R"(/org/tiny/resolve/main/(.+))", file);
    server_.Get(R"(/org/gated/resolve/main/(.+))", [](const httplib::Request&, httplib::Response& res) { res.status = 401; });
    server_.Get("/blobs/weights", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.method == "HEAD") {
        res.set_header("Content-Length", std::to_string(kWeights.size()));
        return;
      }
      ++blob_requests;
      if (req.has_header("Range")) ++ranged_requests;  // httplib serves the range of the provider's bytes
      const bool break_off = blob_requests == 1;  // the first download stops halfway
      res.set_content_provider(kWeights.size(), "application/octet-stream",
                               [break_off](size_t offset, size_t length, httplib::DataSink& sink) {
                                 if (break_off && offset >= kWeights.size() / 2) return false;  // drop the connection
                                 return sink.write(kWeights.data() + offset, std::min<size_t>(length, 65536));
                               });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeHub() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> blob_requests{0}, ranged_requests{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(HubObjectStoreTest, ListsFetchesResumesAndCachesInTheHubsLayout) {
  FakeHub hub;
  TempDir cache;
  HubObjectStore store({.endpoint = hub.url(), .token = "", .cache_dir = cache.path(), .offline = false});
  auto dir = store.KeyForPath("org/tiny");
  ASSERT_TRUE(dir.has_value()) << dir.error().ToString();
  EXPECT_EQ(*dir, "org/tiny@main");
  ListOptions list;
  list.prefix = *dir + "/";
  auto listed = store.List(list);
  ASSERT_TRUE(listed.has_value()) << listed.error().ToString();
  ASSERT_EQ(listed->objects.size(), 2u);
  EXPECT_EQ(listed->objects[0].key, "org/tiny@main/config.json");

  auto config = store.Localize("org/tiny@main/config.json");
  ASSERT_TRUE(config.has_value()) << config.error().ToString();
  EXPECT_FALSE(config->temporary());
  EXPECT_EQ(Read(config->path()), kConfig);
  auto weights = store.Localize("org/tiny@main/model.safetensors");
  ASSERT_TRUE(weights.has_value()) << weights.error().ToString();
  EXPECT_EQ(Read(weights->path()), kWeights) << "resumed after the broken download";
  EXPECT_GE(hub.ranged_requests.load(), 1);
  // The hub's cache layout: blobs named by ETag, snapshots/<commit>/ links, refs/main.
  const fs::path repo = cache.path() / "models--org--tiny";
  EXPECT_TRUE(fs::exists(repo / "blobs" / Sha256(kWeights)));
  EXPECT_TRUE(fs::is_symlink(repo / "snapshots" / kCommit / "model.safetensors"));
  EXPECT_EQ(Read(repo / "refs" / "main"), kCommit);
  EXPECT_EQ(weights->path(), repo / "snapshots" / kCommit / "model.safetensors");
  // A second read is the cache's.
  const int before = hub.blob_requests.load();
  ASSERT_TRUE(store.Localize("org/tiny@main/model.safetensors").has_value());
  EXPECT_EQ(hub.blob_requests.load(), before);
  // Read-only.
  EXPECT_EQ(store.Create("org/tiny@main/x").error().code(), StatusCode::kPermissionDenied);

  // Offline: the cache answers, and what it lacks is an error naming it.
  HubObjectStore offline({.endpoint = "http://127.0.0.1:9", .token = "", .cache_dir = cache.path(), .offline = true});
  auto cached = offline.List(list);
  ASSERT_TRUE(cached.has_value()) << cached.error().ToString();
  EXPECT_EQ(cached->objects.size(), 2u);
  EXPECT_TRUE(offline.Localize("org/tiny@main/config.json").has_value());
  auto uncached = offline.Localize("org/other@main/config.json");
  ASSERT_FALSE(uncached.has_value());
  EXPECT_NE(uncached.error().message().find("HF_HUB_OFFLINE"), std::string::npos);
}

// HF_TOKEN goes to the hub, never to the blob store a large file redirects to (another host).
TEST(HubObjectStoreTest, TheTokenGoesToTheHubOnlyNotToTheBlobStoreItRedirectsTo) {
  const std::string weights(2'000'000, 'b');
  std::atomic<int> blob_saw_token{0}, blob_requests{0}, hub_refused{0};
  httplib::Server blobs, hub;
  blobs.Get("/blob", [&](const httplib::Request& req, httplib::Response& res) {
    ++blob_requests;
    if (req.has_header("Authorization")) ++blob_saw_token;
    res.set_content(weights, "application/octet-stream");
  });
  const int blob_port = blobs.bind_to_any_port("127.0.0.1");
  std::thread blob_thread([&] { blobs.listen_after_bind(); });
  auto authorized = [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") == "Bearer hf_secret_token") return true;
    ++hub_refused;
    res.status = 401;
    return false;
  };
  hub.Get("/api/models/org/private/revision/main", [&](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(R"({"sha": ")" + kCommit + R"(", "siblings": [{"rfilename": "model.safetensors"}]})", "application/json");
  });
  hub.Get("/org/private/resolve/main/model.safetensors", [&](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_header("X-Repo-Commit", kCommit);
    res.set_header("X-Linked-Etag", "\"" + Sha256(weights) + "\"");
    res.set_redirect("http://127.0.0.1:" + std::to_string(blob_port) + "/blob");
  });
  const int hub_port = hub.bind_to_any_port("127.0.0.1");
  std::thread hub_thread([&] { hub.listen_after_bind(); });
  while (!hub.is_running() || !blobs.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  TempDir cache;
  HubObjectStore store({.endpoint = "http://127.0.0.1:" + std::to_string(hub_port), .token = "hf_secret_token",
                        .cache_dir = cache.path(), .offline = false});
  auto local = store.Localize("org/private@main/model.safetensors");
  ASSERT_TRUE(local.has_value()) << local.error().ToString();
  EXPECT_TRUE(Read(local->path()) == weights);
  EXPECT_EQ(hub_refused.load(), 0) << "the hub got the token";
  EXPECT_GE(blob_requests.load(), 1);
  EXPECT_EQ(blob_saw_token.load(), 0) << "the blob store never sees HF_TOKEN";
  HubObjectStore anonymous({.endpoint = "http://127.0.0.1:" + std::to_string(hub_port), .token = "", .cache_dir = cache.path() / "other",
                            .offline = false});
  auto refused = anonymous.Localize("org/private@main/model.safetensors");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.error().message().find("hf_secret_token"), std::string::npos);
  hub.stop();
  blobs.stop();
  hub_thread.join();
  blob_thread.join();
}

TEST(HubObjectStoreTest, GatedReposMissingFilesAndBadIdsAreClearErrors) {
  FakeHub hub;
  TempDir cache;
  HubObjectStore store({.endpoint = hub.url(), .token = "", .cache_dir = cache.path(), .offline = false});
  ListOptions gated;
  gated.prefix = "org/gated@main/";
  auto g = store.List(gated);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(g.error().message().find("org/gated"), std::string::npos);
  auto missing = store.Localize("org/tiny@main/pytorch_model.bin");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.error().message().find("pytorch_model.bin"), std::string::npos);
  EXPECT_NE(missing.error().message().find("org/tiny"), std::string::npos);
  for (const char* bad : {"../etc", "org/../x", "a/b/c", "", "org/name@", "org/name@../x"})
    EXPECT_FALSE(store.KeyForPath(bad).has_value()) << bad;
  EXPECT_EQ(*store.KeyForPath("hf://org/tiny@v1.0"), "org/tiny@v1.0");
  HubObjectStore unreachable({.endpoint = "http://127.0.0.1:9", .token = "", .cache_dir = cache.path(), .offline = false,
                              .timeout_seconds = 5});
  EXPECT_EQ(unreachable.List(gated).error().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mlaas::storage

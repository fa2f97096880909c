// Storage transfer benchmark, ours beside the usual tools on the same loopback servers:
//   S3: S3ObjectStore upload (PutFile: parallel multipart) and download (Download: parallel
//       ranges) of one object against `aws s3 cp` (Debian's awscli) up and down, on s3rver;
//   Hub: HubObjectStore fetching one large model file into the hub's cache (its SHA-256 checked
//       as it arrives, as for the hub's LFS files; and unchecked, as for small files) against
//       `curl -L` and `curl -L` + `sha256sum`, on a hub-shaped HTTP server written here.
// Prints MB/s of each side and the ratio (> 1: mlaas is faster), medians of --rounds.
//
//   storage_bench [--mib 1024] [--hub-mib 400] [--rounds 3]
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "bench_util.h"
#include "storage/digest.h"
#include "storage/hub_object_store.h"
#include "storage/s3_object_store.h"
#include "testutil/s3rver.h"
#include "testutil/temp_dir.h"

namespace fs = std::filesystem;
using namespace mlaas;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void WriteRandomFile(const fs::path& file, uint64_t bytes) {
  std::ofstream out(file, std::ios::binary);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> block(1 << 17);
  for (uint64_t done = 0; done < bytes;) {
    for (auto& w : block) w = rng();
    const uint64_t n = std::min<uint64_t>(bytes - done, block.size() * 8);
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    done += n;
  }
}

bool SameFile(const fs::path& a, const fs::path& b) {
  auto ha = storage::Sha256OfFile(a), hb = storage::Sha256OfFile(b);
  return ha.has_value() && hb.has_value() && *ha == *hb;
}

void Row(const std::string& what, double mb, double ours_s, double peer_s, const std::string& peer) {
  std::printf("| %-28s | %8.1f | %8.1f | %-18s | %5.2fx |\n", what.c_str(), mb / ours_s, mb / peer_s, peer.c_str(), peer_s / ours_s);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = 1024, hub_mib = 400;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mib") mib = std::stoull(argv[i + 1]);
    else if (a == "--hub-mib") hub_mib = std::stoull(argv[i + 1]);
    else if (a == "--rounds") rounds = std::stoi(argv[i + 1]);
    else {
      std::cerr << "usage: storage_bench [--mib N] [--hub-mib N] [--rounds R]\n";
      return 2;
    }
  }
  testing::TempDir dir;
  std::printf("| transfer | mlaas MB/s | peer MB/s | peer | ratio |\n|---|---:|---:|---|---:|\n");

  // S3, on s3rver.
  if (!testing::HaveS3rver() || !fs::exists("/usr/bin/aws")) {
    std::cerr << "s3rver or awscli missing (scripts/install-deps.sh): S3 not measured\n";
  } else {
    testing::S3rver s3rver;
    if (Status st = s3rver.Start(dir.path(), {"bench"}); !st.ok()) {
      std::cerr << st.ToString() << "\n";
      return 1;
    }
    storage::S3ObjectStore s3(s3rver.options());
    const fs::path file = dir.path() / "object.bin";
    WriteRandomFile(file, mib << 20);
    const double mb = static_cast<double>(mib << 20) / 1e6;
    const std::string aws = "env -i PATH=/usr/bin:/bin HOME=" + dir.path().string() +
                            " AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1"
                            " AWS_CONFIG_FILE=/dev/null /usr/bin/aws --endpoint-url " + s3rver.endpoint() + " s3 cp --only-show-errors ";
    std::vector<double> up_ours, up_peer, down_ours, down_peer;
    for (int r = 0; r < rounds; ++r) {
      auto t0 = Clock::now();
      if (!s3.PutFile("bench/ours.bin", file).ok()) return 1;
      up_ours.push_back(Seconds(t0));
      t0 = Clock::now();
      if (bench::Run(aws + file.string() + " s3://bench/peer.bin").empty() && !s3.Stat("bench/peer.bin").has_value()) return 1;
      up_peer.push_back(Seconds(t0));
      auto info = s3.Stat("bench/ours.bin");
      if (!info.has_value()) return 1;
      const fs::path ours_copy = dir.path() / "ours-down.bin", peer_copy = dir.path() / "peer-down.bin";
      t0 = Clock::now();
      if (!s3.Download(*info, ours_copy).ok()) return 1;
      down_ours.push_back(Seconds(t0));
      t0 = Clock::now();
      bench::Run(aws + "s3://bench/peer.bin " + peer_copy.string());
      down_peer.push_back(Seconds(t0));
      if (!SameFile(file, ours_copy) || !SameFile(file, peer_copy)) {
        std::cerr << "a download differs from the upload\n";
        return 1;
      }
      fs::remove(ours_copy);
      fs::remove(peer_copy);
    }
    const std::string size = std::to_string(mib) + " MiB";
    Row("S3 upload, " + size, mb, bench::Median(up_ours), bench::Median(up_peer), "aws s3 cp");
    Row("S3 download, " + size, mb, bench::Median(down_ours), bench::Median(down_peer), "aws s3 cp");
    bench::Record("storage.s3.upload", "S3 upload of " + size + " vs aws s3 cp (s3rver, loopback)", mb / bench::Median(up_ours),
                  mb / bench::Median(up_peer), "MB/s");
    bench::Record("storage.s3.download", "S3 download of " + size + " vs aws s3 cp (s3rver, loopback)",
                  mb / bench::Median(down_ours), mb / bench::Median(down_peer), "MB/s");
  }

  // The hub, on a hub-shaped server serving one large weights file (with its SHA-256 ETag).
  {
    const fs::path repo = dir.path() / "repo";
    fs::create_directories(repo);
    WriteRandomFile(repo / "model.safetensors", hub_mib << 20);
    auto sha = storage::Sha256OfFile(repo / "model.safetensors");
    if (!sha.has_value()) return 1;
    httplib::Server hub;
    const std::string commit(40, 'b');
    bool sha_etag = true;
    hub.Get("/api/models/org/big/revision/main", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"id", "org/big"}, {"sha", commit}, {"siblings", {{{"rfilename", "model.safetensors"}}}}}.dump(),
                      "application/json");
    });
    hub.Get("/org/big/resolve/main/model.safetensors", [&](const httplib::Request&, httplib::Response& res) {
      const uint64_t size = fs::file_size(repo / "model.safetensors");
      auto in = std::make_shared<std::ifstream>(repo / "model.safetensors", std::ios::binary);
      res.set_header("X-Repo-Commit", commit);
      // The hub names a large (LFS) file by its SHA-256, which mlaas checks as it downloads; a
      // small file's ETag is a git hash, not checked.
      res.set_header("ETag", sha_etag ? "\"" + *sha + "\"" : "\"0123456789abcdef0123456789abcdef01234567\"");
      res.set_content_provider(size, "application/octet-stream", [in](size_t offset, size_t length, httplib::DataSink& sink) {
        std::string buf(std::min<size_t>(length, 1 << 20), '\0');
        in->seekg(static_cast<std::streamoff>(offset));
        in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
        return sink.write(buf.data(), static_cast<size_t>(in->gcount()));
      });
    });
    const int port = hub.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { hub.listen_after_bind(); });
    while (!hub.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::string endpoint = "http://127.0.0.1:" + std::to_string(port);
    const double mb = static_cast<double>(hub_mib << 20) / 1e6;
    std::vector<double> ours, ours_unchecked, peer, peer_checked;
    const fs::path curl_copy = dir.path() / "curl.bin";
    const std::string curl = "curl -sSfL -o " + curl_copy.string() + " " + endpoint + "/org/big/resolve/main/model.safetensors";
    auto fetch = [&](int r, bool checked, std::vector<double>& times) {
      sha_etag = checked;
      storage::HubOptions o;
      o.endpoint = endpoint;
      o.cache_dir = dir.path() / ("hub-cache-" + std::to_string(r) + (checked ? "-sha" : "-git"));
      storage::HubObjectStore store(o);
      auto t0 = Clock::now();
      auto local = store.Localize("org/big@main/model.safetensors");
      if (!local.has_value()) {
        std::cerr << local.error().ToString() << "\n";
        return false;
      }
      times.push_back(Seconds(t0));
      const bool same = SameFile(local->path(), repo / "model.safetensors");
      fs::remove_all(o.cache_dir);
      return same;
    };
    for (int r = 0; r < rounds; ++r) {
      if (!fetch(r, true, ours) || !fetch(r, false, ours_unchecked)) return 1;
      auto t0 = Clock::now();
      bench::Run(curl);
      peer.push_back(Seconds(t0));
      if (!SameFile(curl_copy, repo / "model.safetensors")) return 1;
      fs::remove(curl_copy);
      t0 = Clock::now();
      bench::Run(curl + " && sha256sum " + curl_copy.string());
      peer_checked.push_back(Seconds(t0));
      fs::remove(curl_copy);
    }
    hub.stop();
    serving.join();
    const std::string size = std::to_string(hub_mib) + " MiB";
    Row("Hub, " + size + ", SHA-256 checked", mb, bench::Median(ours), bench::Median(peer), "curl -L");
    Row("Hub, " + size + ", SHA-256 checked", mb, bench::Median(ours), bench::Median(peer_checked), "curl -L + sha256sum");
    Row("Hub, " + size + ", git ETag", mb, bench::Median(ours_unchecked), bench::Median(peer), "curl -L");
    bench::Record("storage.hub.download", "Hub download of " + size + " into the hub cache, SHA-256 checked, vs curl (loopback)",
                  mb / bench::Median(ours), mb / bench::Median(peer), "MB/s");
    bench::Record("storage.hub.download-checked", "the same vs curl + sha256sum (the same work)", mb / bench::Median(ours),
                  mb / bench::Median(peer_checked), "MB/s");
  }
  return 0;
}

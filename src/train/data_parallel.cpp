#include "train/data_parallel.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/net.h"
#include "common/text.h"
#include "train/run_group.h"

#if MLAAS_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace mlaas::train {

using nlohmann::json;

namespace {

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

Result<int> IntEnv(const char* name, int min, int max) {
  auto v = Env(name);
  if (!v) return InvalidArgument(std::string(name) + " must be set for data-parallel training", name);
  auto n = ParseInt(*v);
  if (!n || *n < min || *n > max)
    return InvalidArgument(std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
                               std::to_string(max) + ", not '" + *v + "'",
                           name);
  return static_cast<int>(*n);
}

}  // namespace

Result<DataParallelConfig> DataParallelConfigFromEnv() {
  DataParallelConfig c;
  // Also the timeout of the groups gathered through the database (without WORLD_SIZE).
  if (Env("MLAAS_GROUP_TIMEOUT_SECONDS")) {
    MLAAS_ASSIGN_OR_RETURN(int seconds, IntEnv("MLAAS_GROUP_TIMEOUT_SECONDS", 10, 86400));
    c.timeout = std::chrono::seconds(seconds);
  }
  if (!Env("WORLD_SIZE")) return c;
  MLAAS_ASSIGN_OR_RETURN(c.world_size, IntEnv("WORLD_SIZE", 1, 4096));
  if (c.world_size == 1) return c;
  MLAAS_ASSIGN_OR_RETURN(c.rank, IntEnv("RANK", 0, c.world_size - 1));
  if (Env("LOCAL_RANK")) {
    MLAAS_ASSIGN_OR_RETURN(c.local_rank, IntEnv("LOCAL_RANK", 0, 4095));
  }
  auto addr = Env("MASTER_ADDR");
  if (!addr) return InvalidArgument("MASTER_ADDR must be set for data-parallel training", "MASTER_ADDR");
  c.master_addr = *addr;
  MLAAS_ASSIGN_OR_RETURN(c.master_port, IntEnv("MASTER_PORT", 1, 65535));
  return c;
}

#if MLAAS_HAVE_C10D_GLOO

struct DataParallelGroup::Impl {
  DataParallelConfig config;
  c10::intrusive_ptr<c10d::Store> store;
  std::shared_ptr<::gloo::transport::Device> device;
  // A follower's heartbeat (Following): "alive/<rank>" advanced every kHeartbeat.
  std::thread heartbeat;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }
};

bool DataParallelAvailable() { return true; }

namespace {

constexpr auto kHeartbeat = std::chrono::milliseconds(200);

std::string AliveKey(int rank) { return "alive/" + std::to_string(rank); }

// Rank 0 serves the store (hosting: without waiting for the others); every member connects.
Result<std::unique_ptr<DataParallelGroup::Impl>> OpenStore(const DataParallelConfig& config, bool hosting) {
  if (config.world_size < 2) return InvalidArgument("a data-parallel group needs WORLD_SIZE of 2 or more", "WORLD_SIZE");
  auto impl = std::make_unique<DataParallelGroup::Impl>();
  impl->config = config;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(config.master_port);
    options.isServer = config.rank == 0;
    options.numWorkers = static_cast<size_t>(config.world_size);
    options.waitWorkers = !hosting;
    options.timeout = config.timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, options);
    impl->config.master_port = store->getPort();
    impl->store = store;
    if (auto ifname = Env("GLOO_SOCKET_IFNAME")) {
      impl->device = c10d::ProcessGroupGloo::createDeviceForInterface(*ifname);
    } else if (IsLoopbackAddress(config.master_addr)) {
      impl->device = c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
    } else {
      impl->device = c10d::ProcessGroupGloo::createDefaultDevice();
    }
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    return Unavailable("cannot form the data-parallel group of " + std::to_string(config.world_size) + " at " +
                       config.master_addr + ":" + std::to_string(config.master_port) + " (rank " +
                       std::to_string(config.rank) + "): " + why);
  }
  return impl;
}

}  // namespace

Result<std::unique_ptr<DataParallelGroup>> DataParallelGroup::Join(const DataParallelConfig& config) {
  MLAAS_ASSIGN_OR_RETURN(auto impl, OpenStore(config, /*hosting=*/false));
  return std::unique_ptr<DataParallelGroup>(new DataParallelGroup(std::move(impl)));
}

Result<std::unique_ptr<DataParallelGroup>> DataParallelGroup::Host(const DataParallelConfig& config) {
  if (config.rank != 0) return InvalidArgument("only rank 0 hosts its group's store");
  MLAAS_ASSIGN_OR_RETURN(auto impl, OpenStore(config, /*hosting=*/true));
  return std::unique_ptr<DataParallelGroup>(new DataParallelGroup(std::move(impl)));
}

Status DataParallelGroup::Arrived() {
  try {
    impl_->store->add("arrived", 1);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Status DataParallelGroup::TakeLocalRank() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return Internal("cannot read this host's name");
  try {
    impl_->config.local_rank = static_cast<int>(impl_->store->add(std::string("hosts/") + name, 1) - 1);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Status DataParallelGroup::WaitForMembers(const std::function<bool()>& stop) {
  const auto deadline = std::chrono::steady_clock::now() + impl_->config.timeout;
  try {
    for (;;) {
      const int64_t arrived = impl_->store->add("arrived", 0);
      if (arrived >= impl_->config.world_size - 1) return Status::Ok();
      if (stop && stop()) return Cancelled("stopped while the group gathered");
      if (std::chrono::steady_clock::now() > deadline)
        return Unavailable(std::to_string(arrived) + " of the " + std::to_string(impl_->config.world_size - 1) +
                           " other members of the data-parallel group arrived within " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(impl_->config.timeout).count()) +
                           " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Result<int64_t> DataParallelGroup::Publish(const json& task) {
  try {
    const int64_t n = impl_->store->add("tasks/last", 1);
    const std::string text = task.dump();
    impl_->store->set("tasks/" + std::to_string(n), std::vector<uint8_t>(text.begin(), text.end()));
    // Every member took the previous one (it trained with us), so the store keeps one task.
    if (n > 1) (void)impl_->store->deleteKey("tasks/" + std::to_string(n - 1));
    return n;
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Result<int64_t> DataParallelGroup::LastPublished() {
  try {
    return impl_->store->add("tasks/last", 0);
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Status DataParallelGroup::Following() {
  Impl& m = *impl_;
  if (m.heartbeat.joinable()) return Status::Ok();
  // The beats go over a connection of their own: a store client answers one request at a time,
  // so on the member's connection they would wait behind a long read (Gloo's rendezvous waits
  // there for rank 0's keys) and the member would look dead while it joins a run.
  c10::intrusive_ptr<c10d::Store> beats;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(m.config.master_port);
    options.isServer = false;
    options.waitWorkers = false;
    options.timeout = m.config.timeout;
    beats = c10::make_intrusive<c10d::TCPStore>(m.config.master_addr, options);
    beats->add(AliveKey(m.config.rank), 1);
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
  m.heartbeat = std::thread([&m, beats = std::move(beats)] {
    std::unique_lock lock(m.mu);
    while (!m.wake.wait_for(lock, kHeartbeat, [&m] { return m.stopping; })) {
      try {
        beats->add(AliveKey(m.config.rank), 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 stopped): NextTask says so
      }
    }
  });
  return Status::Ok();
}

Status DataParallelGroup::WaitForFollowers(const std::function<bool()>& stop) {
  const DataParallelConfig& c = impl_->config;
  const auto deadline = std::chrono::steady_clock::now() + c.timeout;
  try {
    // A member is live once its heartbeat advances past what it was when the wait began: a dead
    // member's last beats, however recent, do not count.
    std::vector<int64_t> before(static_cast<size_t>(c.world_size), 0);
    for (int r = 1; r < c.world_size; ++r) before[static_cast<size_t>(r)] = impl_->store->add(AliveKey(r), 0);
    std::vector<bool> live(static_cast<size_t>(c.world_size), false);
    for (;;) {
      int missing = 0;
      for (int r = 1; r < c.world_size; ++r) {
        const size_t k = static_cast<size_t>(r);
        if (!live[k] && impl_->store->add(AliveKey(r), 0) > before[k]) live[k] = true;
        if (!live[k]) ++missing;
      }
      if (missing == 0) return Status::Ok();
      if (stop && stop()) return Cancelled("stopped while waiting for the other members of the data-parallel group");
      if (std::chrono::steady_clock::now() > deadline)
        return Unavailable(std::to_string(missing) + " of the " + std::to_string(c.world_size - 1) +
                           " other members of the data-parallel group did not follow within " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(c.timeout).count()) +
                           " s (stopped, or not restarted yet)");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Status DataParallelGroup::ReportFailure(const std::string& run_key, const std::string& message) {
  const std::string text = "rank " + std::to_string(impl_->config.rank) + ": " + message;
  try {
    impl_->store->set("failed/" + run_key, std::vector<uint8_t>(text.begin(), text.end()));
    return Status::Ok();
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Result<std::optional<std::string>> DataParallelGroup::MemberFailure(const std::string& run_key,
                                                                    std::chrono::milliseconds grace) {
  const std::string key = "failed/" + run_key;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  try {
    while (!impl_->store->check({key})) {
      if (std::chrono::steady_clock::now() >= deadline) return std::optional<std::string>();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::vector<uint8_t> bytes = impl_->store->get(key);
    return std::optional<std::string>(std::string(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    return Unavailable(std::string("the data-parallel group's store failed: ") + e.what());
  }
}

Result<std::optional<json>> DataParallelGroup::NextTask(int64_t n, std::chrono::milliseconds wait) {
  const std::string key = "tasks/" + std::to_string(n);
  try {
    if (!impl_->store->check({key})) {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(200)));
      if (!impl_->store->check({key})) return std::optional<json>();
    }
    const std::vector<uint8_t> bytes = impl_->store->get(key);
    json task = json::parse(std::string(bytes.begin(), bytes.end()), nullptr, false);
    if (task.is_discarded()) return Internal("task " + std::to_string(n) + " of the group is not JSON");
    return std::optional<json>(std::move(task));
  } catch (const std::exception& e) {
    std::string why = e.what();
    return Unavailable("the data-parallel group's store is gone (rank 0 stopped?): " + why.substr(0, why.find('\n')));
  }
}

// --- one run ---------------------------------------------------------------------------------

namespace {

// Waits for a collective: its errors are the group's (a member went away, or timed out).
// Enqueueing one only checks its arguments, so an error there is ours and propagates as it is
// (the task then fails as in one process instead of going back to the queue).
void Wait(const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    std::string why = e.what();
    throw GroupLost(why.substr(0, why.find('\n')));
  }
}

}  // namespace

struct RunGroup::Impl {
  // libtorch 2.x splits a process group into a front and its backends (Gloo is one); 1.13's
  // ProcessGroupGloo is itself a ProcessGroup. Both have the collectives used here.
#if TORCH_VERSION_MAJOR >= 2
  c10::intrusive_ptr<c10d::Backend> pg;
#else
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
#endif
  std::mutex mu;  // hooks run on autograd's threads
  std::vector<torch::Tensor> params;
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> members;  // parameter indices
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;      // parameter -> bucket
  std::vector<torch::Tensor> slices;  // parameter -> its view in its bucket
  std::vector<bool> ready;
  size_t next_launch = 0;  // buckets go out in their order: the first not launched yet
  bool syncing = false;
};

RunGroup::RunGroup(std::unique_ptr<Impl> impl, int rank, int world) : impl_(std::move(impl)), rank_(rank), world_(world) {}
RunGroup::~RunGroup() = default;

Result<std::unique_ptr<RunGroup>> RunGroup::Open(DataParallelGroup& group, const std::string& run_key) {
  auto impl = std::make_unique<Impl>();
  const auto& c = group.config();
  try {
    auto store = c10::make_intrusive<c10d::PrefixStore>("run/" + run_key, group.impl().store);
    auto options = c10d::ProcessGroupGloo::Options::create(c.timeout);
    options->devices.push_back(group.impl().device);
    options->threads = 2;
    impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, c.rank, c.world_size, options);
  } catch (const std::exception& e) {
    std::string why = e.what();
    return Unavailable("cannot open the data-parallel run " + run_key + ": " + why.substr(0, why.find('\n')));
  }
  return std::unique_ptr<RunGroup>(new RunGroup(std::move(impl), c.rank, c.world_size));
}

void RunGroup::Broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  // A broadcast a tensor, all enqueued before the first wait (Gloo runs them on its threads).
  std::vector<std::vector<at::Tensor>> each;
  each.reserve(tensors.size());
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (const auto& t : tensors) {
    each.push_back({t});
    works.push_back(impl_->pg->broadcast(each.back()));
  }
  for (const auto& w : works) Wait(w);
}

std::vector<double> RunGroup::Sum(const std::vector<double>& values) {
  std::vector<at::Tensor> t = {torch::tensor(values, torch::kFloat64)};
  Wait(impl_->pg->allreduce(t));
  std::vector<double> out(values.size());
  auto a = t[0].accessor<double, 1>();
  for (size_t i = 0; i < values.size(); ++i) out[i] = a[static_cast<int64_t>(i)];
  return out;
}

void RunGroup::Average(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one = {t};
    Wait(impl_->pg->allreduce(one));
    t.div_(static_cast<double>(world_));
  }
}

void RunGroup::AttachGradients(const std::vector<torch::Tensor>& params, size_t bucket_bytes) {
  Impl& m = *impl_;
  // MLAAS_GROUP_BUCKET_BYTES: another bucket size (tuning; tests make many small buckets).
  if (auto v = Env("MLAAS_GROUP_BUCKET_BYTES"); v && ParseInt(*v) && *ParseInt(*v) > 0)
    bucket_bytes = static_cast<size_t>(*ParseInt(*v));
  m.params = params;
  m.bucket_of.assign(params.size(), 0);
  m.slices.resize(params.size());
  m.ready.assign(params.size(), false);
  // Reverse order: the last layers' gradients come first in backward.
  std::vector<std::vector<size_t>> groups;
  size_t bytes = bucket_bytes;
  for (size_t k = params.size(); k-- > 0;) {
    const size_t b = static_cast<size_t>(params[k].numel()) * params[k].element_size();
    if (groups.empty() || bytes + b > bucket_bytes || params[k].scalar_type() != params[groups.back().front()].scalar_type() ||
        params[k].device() != params[groups.back().front()].device()) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += b;
  }
  for (const auto& g : groups) {
    Impl::Bucket bucket;
    int64_t numel = 0;
    for (size_t k : g) numel += params[k].numel();
    bucket.flat = torch::zeros({numel}, params[g.front()].options().requires_grad(false));
    int64_t offset = 0;
    for (size_t k : g) {
      m.slices[k] = bucket.flat.narrow(0, offset, params[k].numel());
      m.bucket_of[k] = m.buckets.size();
      offset += params[k].numel();
    }
    bucket.members = g;
    m.buckets.push_back(std::move(bucket));
  }
  for (size_t k = 0; k < params.size(); ++k) {
    torch::Tensor p = params[k];
    p.register_hook([this, k](torch::Tensor grad) { OnGradient(k, grad); });
  }
}

void RunGroup::BeginBackward(bool sync) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  m.syncing = sync;
  if (!sync) return;
  std::fill(m.ready.begin(), m.ready.end(), false);
  for (auto& b : m.buckets) {
    b.pending = b.members.size();
    b.work.reset();
  }
  m.next_launch = 0;
}

void RunGroup::OnGradient(size_t k, const torch::Tensor& grad) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  if (!m.syncing || m.ready[k]) return;
  torch::NoGradGuard no_grad;
  torch::Tensor slice = m.slices[k];
  slice.copy_(grad.reshape(-1));
  // What earlier micro-batches of this step accumulated (gradient_accumulation_steps).
  const torch::Tensor& accumulated = m.params[k].grad();
  if (accumulated.defined()) slice.add_(accumulated.reshape(-1));
  m.ready[k] = true;
  --m.buckets[m.bucket_of[k]].pending;
  // Every complete bucket from the next one on, in order.
  while (m.next_launch < m.buckets.size() && m.buckets[m.next_launch].pending == 0) Launch(m.next_launch++);
}

void RunGroup::Launch(size_t bucket) {
  Impl::Bucket& b = impl_->buckets[bucket];
  std::vector<at::Tensor> t = {b.flat};
  b.work = impl_->pg->allreduce(t);
}

void RunGroup::EndBackward() {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  torch::NoGradGuard no_grad;
  // The buckets not launched yet, in order; a parameter that got no gradient here (unused on
  // this member's share, or no share at all) gives what it has so far, else zero.
  for (; m.next_launch < m.buckets.size(); ++m.next_launch) {
    Impl::Bucket& b = m.buckets[m.next_launch];
    for (size_t k : b.members) {
      if (m.ready[k]) continue;
      const torch::Tensor& g = m.params[k].grad();
      if (g.defined()) {
        m.slices[k].copy_(g.reshape(-1));
      } else {
        m.slices[k].zero_();
      }
    }
    Launch(m.next_launch);
  }
  // Which parameters got a gradient on some member: one that got none anywhere keeps no
  // gradient, as in a single process (the optimizer then leaves it alone: no weight decay, no
  // moments), rather than a zero one.
  torch::Tensor had = torch::zeros({static_cast<int64_t>(m.params.size())}, torch::kFloat32);
  float* mine = had.data_ptr<float>();
  for (size_t k = 0; k < m.params.size(); ++k)
    if (m.ready[k] || m.params[k].grad().defined()) mine[k] = 1.0f;
  std::vector<at::Tensor> flags = {had};
  auto flagged = impl_->pg->allreduce(flags);
  for (auto& b : m.buckets) {
    Wait(b.work);
    b.work.reset();
    b.flat.div_(static_cast<double>(world_));
  }
  Wait(flagged);
  const auto* anywhere = had.data_ptr<float>();
  for (size_t k = 0; k < m.params.size(); ++k) {
    if (anywhere[k] == 0.0f) continue;
    torch::Tensor p = m.params[k];
    torch::Tensor averaged = m.slices[k].view_as(p);
    if (p.grad().defined()) {
      p.mutable_grad().copy_(averaged);
    } else {
      p.mutable_grad() = averaged.clone();
    }
  }
  m.syncing = false;
}

#else  // no c10d Gloo in this libtorch

struct DataParallelGroup::Impl {
  DataParallelConfig config;
};

bool DataParallelAvailable() { return false; }

Result<std::unique_ptr<DataParallelGroup>> DataParallelGroup::Join(const DataParallelConfig&) {
  return Unimplemented("this build's libtorch has no c10d Gloo process group: data-parallel training is not available");
}
Result<std::unique_ptr<DataParallelGroup>> DataParallelGroup::Host(const DataParallelConfig& config) {
  return Join(config);
}
Status DataParallelGroup::Arrived() { return Unimplemented("no data-parallel training in this build"); }
Status DataParallelGroup::TakeLocalRank() { return Unimplemented("no data-parallel training in this build"); }
Status DataParallelGroup::WaitForMembers(const std::function<bool()>&) {
  return Unimplemented("no data-parallel training in this build");
}
Result<int64_t> DataParallelGroup::Publish(const json&) { return Unimplemented("no data-parallel training in this build"); }
Result<int64_t> DataParallelGroup::LastPublished() { return Unimplemented("no data-parallel training in this build"); }
Status DataParallelGroup::Following() { return Unimplemented("no data-parallel training in this build"); }
Status DataParallelGroup::WaitForFollowers(const std::function<bool()>&) {
  return Unimplemented("no data-parallel training in this build");
}
Status DataParallelGroup::ReportFailure(const std::string&, const std::string&) {
  return Unimplemented("no data-parallel training in this build");
}
Result<std::optional<std::string>> DataParallelGroup::MemberFailure(const std::string&, std::chrono::milliseconds) {
  return Unimplemented("no data-parallel training in this build");
}
Result<std::optional<json>> DataParallelGroup::NextTask(int64_t, std::chrono::milliseconds) {
  return Unimplemented("no data-parallel training in this build");
}

struct RunGroup::Impl {};
RunGroup::RunGroup(std::unique_ptr<Impl> impl, int rank, int world) : impl_(std::move(impl)), rank_(rank), world_(world) {}
RunGroup::~RunGroup() = default;
Result<std::unique_ptr<RunGroup>> RunGroup::Open(DataParallelGroup&, const std::string&) {
  return Unimplemented("no data-parallel training in this build");
}
void RunGroup::Broadcast(const std::vector<torch::Tensor>&) {}
std::vector<double> RunGroup::Sum(const std::vector<double>& values) { return values; }
void RunGroup::Average(const std::vector<torch::Tensor>&) {}
void RunGroup::AttachGradients(const std::vector<torch::Tensor>&, size_t) {}
void RunGroup::BeginBackward(bool) {}
void RunGroup::EndBackward() {}
void RunGroup::OnGradient(size_t, const torch::Tensor&) {}
void RunGroup::Launch(size_t) {}

#endif

DataParallelGroup::DataParallelGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DataParallelGroup::~DataParallelGroup() = default;
const DataParallelConfig& DataParallelGroup::config() const { return impl_->config; }

}  // namespace mlaas::train

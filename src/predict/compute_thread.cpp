#include "predict/compute_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace mlaas::predict {

namespace {

struct Job {
  const std::function<void()>* work;
  std::exception_ptr error;
  bool done = false;
};

class ComputeThread {
 public:
  ComputeThread() : worker_([this] { Loop(); }) {}

  void Run(const std::function<void()>& work) {
    Job job{&work, nullptr, false};
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&job);
    wake_.notify_one();  // the worker is the only waiter
    done_.wait(lock, [&] { return job.done; });
    if (job.error) std::rethrow_exception(job.error);
  }

  std::thread::id id() const { return worker_.get_id(); }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      try {
        (*job->work)();
      } catch (...) {
        job->error = std::current_exception();
      }
      lock.lock();
      job->done = true;
      done_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::deque<Job*> queue_;
  std::thread worker_;
};

// Never destroyed: threads that are still running at exit may still hand it work.
ComputeThread& Instance() {
  static auto* thread = new ComputeThread();
  return *thread;
}

}  // namespace

bool OnComputeThread() { return std::this_thread::get_id() == Instance().id(); }

void RunOnComputeThread(const std::function<void()>& work) {
  if (OnComputeThread()) {
    work();
    return;
  }
  Instance().Run(work);
}

}  // namespace mlaas::predict

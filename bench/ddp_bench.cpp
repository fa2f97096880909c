// Data-parallel training (issue 24): masked-LM training throughput of one process against two
// processes of the same machine training one model together (torch c10d, Gloo on loopback), each
// with one thread, on the same global batch (bert-mini shape, batches of 16 x 128 tokens as
// train_bench uses). Prints tokens/s of both and the scaling efficiency, tokens/s of the pair /
// (2 x tokens/s of one). Rounds alternate; medians.
//
//   ddp_bench [--steps S] [--rounds R]
//   (it runs itself with --member RANK --port P for the members of the pair)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "testutil/free_port.h"
#include "train/data_parallel.h"
#include "train_timing.h"

namespace fs = std::filesystem;
using namespace mlaas;

namespace {

constexpr int64_t kSeq = 128, kVocab = 8000, kBatch = 16;

train::TrainInputs Inputs(const fs::path& work, int steps) {
  train::TrainInputs in;
  in.spec.objective = Objective::kMaskedLm;
  in.spec.epochs = 1;
  in.spec.batch_size = kBatch;
  in.spec.optimizer.init_lr = 1e-4;
  in.spec.threads = 1;
  in.spec.seed = 1;
  in.model_block = {{"config",
                     {{"model_type", "bert"}, {"hidden_size", 256}, {"num_hidden_layers", 4}, {"num_attention_heads", 4},
                      {"intermediate_size", 1024}, {"max_position_embeddings", 512}}}};
  in.tokenizer = work / "vocab.txt";
  std::mt19937_64 rng(1);
  for (int i = 0; i < (steps + 2) * kBatch; ++i) {
    std::string text;
    for (int k = 0; k < kSeq - 2; ++k) text += "w" + std::to_string(5 + rng() % (kVocab - 5)) + " ";
    in.train.push_back({text, "", ""});
  }
  return in;
}

void WriteVocab(const fs::path& work) {
  fs::create_directories(work);
  std::ofstream v(work / "vocab.txt");
  for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
  for (int64_t i = 5; i < kVocab; ++i) v << "w" << i << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 20, rounds = 3, member = -1, port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps") steps = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--member") member = std::atoi(argv[i + 1]);
    if (a == "--port") port = std::atoi(argv[i + 1]);
  }
  const fs::path work = fs::temp_directory_path() / ("mlaas-ddp-bench-" + std::to_string(member < 0 ? 9 : member));
  WriteVocab(work);
  train::TrainInputs in = Inputs(work, steps);
  in.output_dir = work / "out";
  if (member >= 0) {  // one member of the pair: its view of the whole batch's throughput
    train::DataParallelConfig c{.world_size = 2, .rank = member, .local_rank = member, .master_addr = "127.0.0.1",
                                .master_port = port};
    auto group = train::DataParallelGroup::Join(c);
    if (!group.has_value()) {
      std::cerr << group.error().ToString() << "\n";
      return 1;
    }
    in.data_parallel = group->get();
    in.run_key = "bench";
    std::cout << bench::TrainedUnitsPerSecond(in, 2, steps, static_cast<double>(kBatch * kSeq)) << "\n";
    return 0;
  }
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<double> one, two;
  for (int r = 0; r < rounds; ++r) {
    one.push_back(bench::TrainedUnitsPerSecond(in, 2, steps, static_cast<double>(kBatch * kSeq)));
    const std::string p = std::to_string(testing::FreeLoopbackPort());
    const std::string args = " --steps " + std::to_string(steps) + " --port " + p;
    const std::string out = bench::Run(self + " --member 1" + args + " > /dev/null & " + self + " --member 0" + args +
                                       "; wait");
    two.push_back(std::atof(out.c_str()));
    std::cout << "round " << r + 1 << ": one process " << one.back() << " tokens/s, two processes " << two.back()
              << " tokens/s\n";
  }
  const double t1 = bench::Median(one), t2 = bench::Median(two);
  std::cout << std::fixed << std::setprecision(0) << "masked-LM training, bert-mini shape, global batch 16 x 128, 1 thread "
            << "per process\n  one process:   " << t1 << " tokens/s\n  two processes: " << t2 << " tokens/s\n"
            << std::setprecision(2) << "  scaling efficiency: " << t2 / (2 * t1) << " (speed-up " << t2 / t1 << "x)\n";
  return 0;
}

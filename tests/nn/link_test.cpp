// The C++ runtime our code calls is libstdc++'s (or a copy linked into the executable), never a
// copy another library exports: a CUDA libtorch wheel's libtorch.so carries copies of some
// libstdc++ functions (std::filesystem's among them), and when such a copy was bound to our
// calls, std::filesystem::remove_all called through a null pointer (issue 23). Checked here in
// every build, so the device check (scripts/device-check.sh) catches it in a wheel build.
#include <dlfcn.h>
#include <unistd.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

namespace mlaas::nn {
namespace {

// The file that defines the function at `address` (as the dynamic linker bound it).
std::string DefiningFile(const void* address) {
  Dl_info info{};
  if (::dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "";
  std::error_code ec;
  auto path = std::filesystem::weakly_canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : path.string();
}

TEST(LinkTest, StandardLibraryCallsBindToTheStandardLibrary) {
  ASSERT_TRUE(torch::ones({1}).defined());  // libtorch is loaded, as in the server
  std::error_code ec;
  const std::string self = std::filesystem::canonical("/proc/self/exe", ec).string();
  const std::pair<const char*, const void*> functions[] = {
      {"std::filesystem::remove_all",
       reinterpret_cast<const void*>(
           static_cast<std::uintmax_t (*)(const std::filesystem::path&)>(&std::filesystem::remove_all))},
      {"std::filesystem::create_directories",
       reinterpret_cast<const void*>(
           static_cast<bool (*)(const std::filesystem::path&)>(&std::filesystem::create_directories))},
      {"std::filesystem::rename",
       reinterpret_cast<const void*>(
           static_cast<void (*)(const std::filesystem::path&, const std::filesystem::path&)>(&std::filesystem::rename))},
  };
  for (const auto& [name, address] : functions) {
    const std::string file = DefiningFile(address);
    const bool ok = file == self || std::filesystem::path(file).filename().string().rfind("libstdc++", 0) == 0;
    EXPECT_TRUE(ok) << name << " is bound to " << (file.empty() ? "an unknown file" : file)
                    << ", not libstdc++ (link with -DMLAAS_STATIC_LIBSTDCXX=ON: docs/gpu.md)";
  }
  // And it works: a tree made and removed.
  const auto dir = std::filesystem::temp_directory_path() / ("mlaas-link-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "a" / "b");
  EXPECT_EQ(std::filesystem::remove_all(dir), 3u);
}

}  // namespace
}  // namespace mlaas::nn

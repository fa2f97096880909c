#include "storage/local_object_store.h"
#include "storage/listing.h"

#include <gtest/gtest.h>

#include <thread>

#include "testutil/temp_dir.h"

namespace mlaas::storage {
namespace {

namespace fs = std::filesystem;
using mlaas::testing::ReadFile;
using mlaas::testing::TempDir;

class LocalObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp");
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    store_ = std::move(s).value();
  }

  void Put(const std::string& key, const std::string& data = "x") {
    auto r = store_->PutString(key, data);
    ASSERT_TRUE(r.has_value()) << key << ": " << r.error().ToString();
  }

  std::vector<std::string> Keys(const ListResult& r) {
    std::vector<std::string> out;
    for (const auto& o : r.objects) out.push_back(o.key);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<LocalObjectStore> store_;
};

TEST_F(LocalObjectStoreTest, PutGetStatDelete) {
  Put("datasets/train.csv", "text,label\nhello,1\n");
  EXPECT_EQ(ReadFile(dir_ / "objects/datasets/train.csv"), "text,label\nhello,1\n");
  auto info = store_->Stat("datasets/train.csv");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->size, 19u);
  EXPECT_FALSE(info->etag.empty());
  EXPECT_GT(info->last_modified_ms, 0);
  EXPECT_EQ(store_->GetString("datasets/train.csv").value(), "text,label\nhello,1\n");

  ASSERT_TRUE(store_->Delete("datasets/train.csv").ok());
  EXPECT_EQ(store_->Stat("datasets/train.csv").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("datasets/train.csv").code(), StatusCode::kNotFound);
  // The emptied prefix disappears as in S3.
  EXPECT_FALSE(fs::exists(dir_ / "objects/datasets"));
}

TEST_F(LocalObjectStoreTest, OverwriteChangesEtag) {
  Put("a.txt", "one");
  std::string etag1 = store_->Stat("a.txt")->etag;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Put("a.txt", "two!");
  EXPECT_NE(store_->Stat("a.txt")->etag, etag1);
  EXPECT_EQ(store_->GetString("a.txt").value(), "two!");
}

TEST_F(LocalObjectStoreTest, UncommittedWriteLeavesNothingBehind) {
  {
    auto w = store_->Create("partial.bin");
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE((*w)->Write("half of it").ok());
    EXPECT_EQ((*w)->bytes_written(), 10u);
    EXPECT_EQ(store_->Stat("partial.bin").error().code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(store_->Stat("partial.bin").error().code(), StatusCode::kNotFound);
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(LocalObjectStoreTest, StreamsLargeObjects) {
  auto w = store_->Create("big.bin");
  ASSERT_TRUE(w.has_value());
  std::string chunk(1 << 16, 'z');
  for (int i = 0; i < 64; ++i) ASSERT_TRUE((*w)->Write(chunk).ok());
  ASSERT_TRUE((*w)->Commit().has_value());
  auto r = store_->Open("big.bin");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)->info().size, 64u << 16);
  size_t total = 0;
  std::vector<char> buf(10000);
  for (;;) {
    auto n = (*r)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.has_value());
    if (*n == 0) break;
    total += *n;
  }
  EXPECT_EQ(total, 64u << 16);
  EXPECT_EQ(store_->GetString("big.bin", 1000).error().code(), StatusCode::kResourceExhausted);
}

TEST_F(LocalObjectStoreTest, RejectsBadKeys) {
  for (std::string key : std::vector<std::string>{"", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "trailing/",
                          std::string("nul\0byte", 8), std::string("bad\xff"), "ctl\x01"}) {
    auto st = store_->PutString(key, "x");
    ASSERT_FALSE(st.has_value()) << key;
    EXPECT_EQ(st.error().code(), StatusCode::kInvalidArgument) << key;
  }
  EXPECT_EQ(store_->PutString(std::string(1025, 'k'), "x").error().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(LocalObjectStoreTest, KeyAndPrefixCannotCollide) {
  Put("a/b");
  EXPECT_EQ(store_->PutString("a/b/c", "x").error().code(), StatusCode::kFailedPrecondition);
  Put("x/y/z");
  EXPECT_EQ(store_->PutString("x/y", "x").error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Stat("x/y").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete("x/y").code(), StatusCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, KeyForPathStaysInsideTheRoot) {
  EXPECT_EQ(store_->KeyForPath("datasets/a.csv").value(), "datasets/a.csv");
  EXPECT_EQ(store_->KeyForPath("./datasets//a.csv").value(), "datasets/a.csv");
  EXPECT_EQ(store_->KeyForPath("models/bert/").value(), "models/bert");
  EXPECT_EQ(store_->KeyForPath((store_->root() / "x/y.csv").string()).value(), "x/y.csv");
  for (std::string bad : std::vector<std::string>{"", "../etc/passwd", "a/../../b", "/etc/passwd", ".", "/",
                          std::string("a\0b", 3)}) {
    auto k = store_->KeyForPath(bad);
    ASSERT_FALSE(k.has_value()) << bad;
    EXPECT_EQ(k.error().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(LocalObjectStoreTest, SymlinksLeadingOutAreRefused) {
  TempDir outside;
  outside.Write("secret.txt", "top secret");
  fs::create_directory_symlink(outside.path(), store_->root() / "escape");
  EXPECT_EQ(store_->KeyForPath("escape/secret.txt").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetString("escape/secret.txt").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutString("escape/new.txt", "x").error().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(outside / "new.txt"));
  // Links out never show up in listings either; a link to a file inside the root is an object,
  // as reading its key allows (a Hugging Face cache's snapshot links its files to blobs/).
  Put("visible.txt");
  Put("hub/blobs/abc123", "weights");
  fs::create_directories(store_->root() / "hub/snapshots/main");
  fs::create_symlink("../../blobs/abc123", store_->root() / "hub/snapshots/main/model.safetensors");
  fs::create_symlink(outside.path() / "secret.txt", store_->root() / "hub/snapshots/main/secret.txt");
  fs::create_directory_symlink(store_->root() / "hub", store_->root() / "hub/snapshots/loop");
  auto page = store_->List({});
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"hub/blobs/abc123", "hub/snapshots/main/model.safetensors", "visible.txt"}));
  EXPECT_EQ(*store_->GetString("hub/snapshots/main/model.safetensors"), "weights");
  EXPECT_EQ(page->objects[1].size, 7u);
  // Deleting the listed link removes the link, not the blob it leads to.
  EXPECT_TRUE(store_->Delete("hub/snapshots/main/model.safetensors").ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(store_->root() / "hub/snapshots/main/model.safetensors")));
  EXPECT_EQ(*store_->GetString("hub/blobs/abc123"), "weights");
}

TEST_F(LocalObjectStoreTest, ListsInKeyOrderWithPrefixAndDelimiter) {
  for (const char* k : {"a.txt", "a/b.txt", "a/c/d.txt", "a-b", "b/x", "b/y/z", "c"}) Put(k);
  auto all = store_->List({});
  ASSERT_TRUE(all.has_value());
  // Byte order: '-' < '.' < '/'.
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"a-b", "a.txt", "a/b.txt", "a/c/d.txt", "b/x",
                                                  "b/y/z", "c"}));
  EXPECT_FALSE(all->is_truncated);

  ListOptions top;
  top.delimiter = "/";
  auto t = store_->List(top);
  EXPECT_EQ(Keys(*t), (std::vector<std::string>{"a-b", "a.txt", "c"}));
  EXPECT_EQ(t->common_prefixes, (std::vector<std::string>{"a/", "b/"}));

  ListOptions sub;
  sub.prefix = "a/";
  sub.delimiter = "/";
  auto s = store_->List(sub);
  EXPECT_EQ(Keys(*s), std::vector<std::string>{"a/b.txt"});
  EXPECT_EQ(s->common_prefixes, std::vector<std::string>{"a/c/"});

  ListOptions partial;
  partial.prefix = "a";
  auto p = store_->List(partial);
  EXPECT_EQ(Keys(*p), (std::vector<std::string>{"a-b", "a.txt", "a/b.txt", "a/c/d.txt"}));
}

TEST_F(LocalObjectStoreTest, PagesWithContinuationTokens) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "d%d/f%02d", i % 3, i);
    Put(key);
    expected.push_back(key);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> got;
  ListOptions o;
  o.max_keys = 4;
  int pages = 0;
  for (;;) {
    auto page = store_->List(o);
    ASSERT_TRUE(page.has_value());
    ++pages;
    for (auto& k : Keys(*page)) got.push_back(k);
    if (!page->is_truncated) break;
    ASSERT_FALSE(page->next_continuation_token.empty());
    o.continuation_token = page->next_continuation_token;
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(pages, 7);

  // Common prefixes page too, and are never repeated across pages.
  ListOptions d;
  d.delimiter = "/";
  d.max_keys = 2;
  auto p1 = store_->List(d);
  EXPECT_EQ(p1->common_prefixes, (std::vector<std::string>{"d0/", "d1/"}));
  ASSERT_TRUE(p1->is_truncated);
  d.continuation_token = p1->next_continuation_token;
  auto p2 = store_->List(d);
  EXPECT_EQ(p2->common_prefixes, std::vector<std::string>{"d2/"});
  EXPECT_FALSE(p2->is_truncated);

  ListOptions after;
  after.start_after = "d2/f20";
  EXPECT_EQ(Keys(*store_->List(after)), (std::vector<std::string>{"d2/f23"}));
}

TEST_F(LocalObjectStoreTest, RejectsBadListOptions) {
  ListOptions o;
  o.max_keys = 0;
  EXPECT_EQ(store_->List(o).error().field(), "max_keys");
  o.max_keys = 1001;
  EXPECT_EQ(store_->List(o).error().code(), StatusCode::kInvalidArgument);
  ListOptions t;
  t.continuation_token = "!!!";
  EXPECT_EQ(store_->List(t).error().field(), "continuation_token");
  ListOptions p;
  p.prefix = "../x";
  EXPECT_EQ(store_->List(p).error().field(), "prefix");
}

TEST_F(LocalObjectStoreTest, ConcurrentWritersAndDeletersNeverCorrupt) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string key = "shared/dir/obj" + std::to_string(i % 5);
        std::string data(100 + t, static_cast<char>('a' + t));
        if (auto put = store_->PutString(key, data); !put.has_value()) {
          ADD_FAILURE() << put.error().ToString();
          ++failures;
        }
        auto got = store_->GetString(key);
        if (got.has_value() && got->size() != 100 + static_cast<size_t>(got->at(0) - 'a')) {
          ++failures;  // a torn object
        }
        (void)store_->Delete(key);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(LocalObjectStoreTest, LocalizeGivesTheFileItself) {
  Put("m/config.json", "{}");
  auto p = store_->Localize("m/config.json");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(ReadFile(p->path()), "{}");
  EXPECT_EQ(store_->Localize("m/missing").error().code(), StatusCode::kNotFound);
}

TEST_F(LocalObjectStoreTest, PutDirectoryUploadsSubdirectoriesAndTheLastFileLast) {
  const fs::path model = dir_ / "model";
  dir_.Write("model/config.json", "{}");
  dir_.Write("model/model.safetensors", "w");
  dir_.Write("model/2_Dense/config.json", "d");
  auto names = ListLocalFiles(model);
  ASSERT_TRUE(names.has_value()) << names.error().ToString();
  EXPECT_EQ(*names, (std::vector<std::string>{"2_Dense/config.json", "config.json", "model.safetensors"}));
  EXPECT_EQ(ListLocalFiles(dir_ / "missing").error().code(), StatusCode::kInternal);

  auto keys = store_->PutDirectory("models/m", model, "config.json");
  ASSERT_TRUE(keys.has_value()) << keys.error().ToString();
  EXPECT_EQ(*keys, (std::vector<std::string>{"models/m/2_Dense/config.json", "models/m/model.safetensors",
                                             "models/m/config.json"}));
  EXPECT_EQ(store_->GetString("models/m/2_Dense/config.json").value(), "d");
  EXPECT_EQ(store_->GetString("models/m/config.json").value(), "{}");
}

TEST_F(LocalObjectStoreTest, KeysWithControlCharactersAreRefusedNamedEscaped) {
  // C0, and C1 (an 8-bit CSI, NEL) and the line separator, which break log lines as well.
  for (const std::string& key : {std::string("logs/a\nb.csv"), std::string("x\r\n\x1b[31m"), std::string("c1\xc2\x9b" "31mRED"),
                                 std::string("nel\xc2\x85x"), std::string("ls\xe2\x80\xa8x")}) {
    for (const Status& st : {store_->PutString(key, "x").status(), store_->Stat(key).status(),
                             store_->Delete(key), store_->Open(key).status()}) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << key;
      EXPECT_NE(st.message().find("contains a control character"), std::string::npos) << st.message();
      EXPECT_EQ(st.message().find_first_of("\r\n\x1b"), std::string::npos) << st.message();
      EXPECT_EQ(st.message().find("\xc2\x9b"), std::string::npos) << st.message();
      EXPECT_EQ(st.message().find("\xc2\x85"), std::string::npos) << st.message();
    }
  }
  EXPECT_NE(store_->Stat("logs/a\nb.csv").error().message().find("'logs/a\\x0ab.csv'"), std::string::npos);
  EXPECT_EQ(store_->KeyForPath("a\tb").error().code(), StatusCode::kInvalidArgument);
}

TEST_F(LocalObjectStoreTest, ErrorsNameTheKeyNeverAServerPath) {
  const std::string root = dir_.path().string();
  auto expect_clean = [&](const Status& st, const std::string& names) {
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.message().find(root), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(names), std::string::npos) << st.message();
  };
  expect_clean(store_->KeyForPath("/etc/passwd").status(), "'/etc/passwd' is outside the data directory");
  // A segment longer than a file name may be is refused before the file system sees it.
  const std::string long_key = "a/" + std::string(300, 's') + "/b.csv";
  expect_clean(store_->PutString(long_key, "x").status(), "object key has a segment of 300 bytes; at most 240");
  expect_clean(store_->Stat(std::string(241, 'c')).status(), "a segment of 241 bytes");
  EXPECT_TRUE(store_->PutString(std::string(240, 'c'), "x").has_value());
  expect_clean(store_->PutFile("models/x/config.json", dir_ / "no-such-file"), "'models/x/config.json'");
  expect_clean(ListLocalFiles(dir_ / "missing").status(), "cannot list a local directory");
  fs::remove_all(dir_ / "tmp");  // the temporary directory vanished under the server
  expect_clean(store_->PutString("datasets/a.csv", "x").status(), "temporary file for 'datasets/a.csv'");
}

TEST(LocalObjectStoreCreateTest, RefusesTempInsideRoot) {
  TempDir dir;
  auto s = LocalObjectStore::Create(dir / "objects", dir / "objects/tmp");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlaas::storage

namespace mlaas::storage {
namespace {

// A store whose listing says "more" without moving on (a hostile or broken S3 endpoint): once
// listed at 600 requests a second forever, a cancel unheard.
class StuckListing final : public ObjectStore {
 public:
  explicit StuckListing(std::string token) : token_(std::move(token)) {}
  std::string_view storage_type() const override { return "s3"; }
  Result<ObjectInfo> Stat(const std::string&) override { return NotFound("none"); }
  Result<std::unique_ptr<ObjectReader>> Open(const std::string&) override { return NotFound("none"); }
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string&) override { return Unimplemented("read-only"); }
  Status Delete(const std::string&) override { return Unimplemented("read-only"); }
  Result<ListResult> List(const ListOptions& options) override {
    ++calls;
    ListResult r;
    r.is_truncated = true;
    // "same": always the same token; "": none; else a new token each time, and no object.
    r.next_continuation_token = token_ == "new" ? options.continuation_token + "x" : token_;
    return r;
  }
  Result<LocalizedPath> Localize(const std::string&) override { return Unimplemented("none"); }
  Result<std::string> KeyForPath(std::string_view) const override { return Unimplemented("none"); }
  int calls = 0;

 private:
  std::string token_;
};

TEST(ListAllObjectsTest, AListingThatDoesNotMoveOnIsAnErrorNotALoop) {
  for (const std::string token : {"same", "", "new"}) {
    StuckListing store(token);
    auto all = ListAllObjects(store, "model/", 1000);
    ASSERT_FALSE(all.has_value()) << token;
    EXPECT_EQ(all.error().code(), StatusCode::kUnavailable) << token;
    EXPECT_LE(store.calls, 102) << token;
  }
}

}  // namespace
}  // namespace mlaas::storage

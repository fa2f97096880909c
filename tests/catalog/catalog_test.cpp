#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "storage/local_object_store.h"
#include "testutil/temp_dir.h"

namespace mlaas::catalog {
namespace {

using mlaas::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

const Caller kAlice{"alice", false};
const Caller kBob{"bob", false};
const Caller kAnonymous{"", false};
const Caller kAdmin{"admin", true};

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metadata::StoreOptions o;
    o.url = (dir_ / "mlaas.db").string();
    records_ = std::move(metadata::OpenCatalogStore(o)).value();
    store_ = std::move(storage::LocalObjectStore::Create(dir_ / "objects", dir_ / "tmp")).value();
    catalog_ = std::make_unique<Catalog>(*records_, *store_);
    Put("models/m/config.json", R"({"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                                     "id2label": {"0": "neg", "1": "pos"}})");
    Put("models/m/model.safetensors", Safetensors());
    Put("models/m/sub/extra.txt", "extra");
    Put("data/reviews.csv", "text,label\ngood,pos\nbad,neg\nfine,pos\n");
  }

  // A safetensors file of two tensors (3x4 and 5 float32 values).
  static std::string Safetensors() {
    const std::string header = R"({"a":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},)"
                               R"("b":{"dtype":"F32","shape":[5],"data_offsets":[48,68]}})";
    std::string out(8, '\0');
    uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + std::string(68, '\0');
  }

  void Put(const std::string& key, const std::string& data) { ASSERT_TRUE(store_->PutString(key, data).has_value()); }
  fs::path File(const std::string& key) { return dir_ / "objects" / key; }

  Result<Version> RegisterModel(const std::string& name, const Caller& caller, const std::string& source = "models/m") {
    RegisterRequest r;
    r.name = name;
    r.source_store = store_.get();
    r.source_key = source;
    return catalog_->Register(r, caller);
  }

  RegisterRequest DatasetRequest(const std::string& name, const std::string& source) {
    RegisterRequest r;
    r.kind = Kind::kDataset;
    r.name = name;
    r.source_store = store_.get();
    r.source_key = source;
    return r;
  }

  TempDir dir_;
  std::unique_ptr<metadata::CatalogStore> records_;
  std::unique_ptr<storage::LocalObjectStore> store_;
  std::unique_ptr<Catalog> catalog_;
};

TEST(ReferenceTest, ParsesEveryFormAndRefusesTheRest) {
  auto latest = ParseReference("catalog://bert-small", "model.path");
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->kind, Kind::kModel);
  EXPECT_EQ(latest->name, "bert-small");
  EXPECT_EQ(latest->version, 0);
  EXPECT_EQ(ParseReference("catalog://m/3", "f")->version, 3);
  EXPECT_EQ(ParseReference("catalog://m@champion", "f")->alias, "champion");
  EXPECT_EQ(ParseReference("catalog://models/m", "f")->name, "m");
  auto d = ParseReference("catalog://datasets/reviews@gold", "f");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->kind, Kind::kDataset);
  EXPECT_EQ(d->ToString(), "catalog://datasets/reviews@gold");
  EXPECT_EQ(ParseReference("catalog://m/2", "f")->ToString(), "catalog://m/2");
  for (const char* bad : {"catalog://", "catalog://M", "catalog://m/0", "catalog://m/x", "catalog://m/1@a",
                          "catalog://m@", "catalog://../x", "catalog://m/1/2", "models/m", "catalog://m@Champion",
                          "catalog://datasets/", "catalog://a b"}) {
    auto r = ParseReference(bad, "model.path");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().field(), "model.path") << bad;
  }
}

TEST_F(CatalogTest, ARegisteredVersionIsAnImmutableCopyWithItsDigestAndFacts) {
  auto v = RegisterModel("sentiment", kAlice);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ(v->version, 1);
  ASSERT_EQ(v->files.size(), 3u);
  EXPECT_EQ(v->files[2].path, "sub/extra.txt");
  EXPECT_EQ(v->files[2].sha256, "c8dee78f8c7b466c881847accc196998bad00e2b96c5ef913dfbe454d3807c96") << "sha256 of 'extra'";
  EXPECT_EQ(v->digest.rfind("sha256:", 0), 0u);
  EXPECT_EQ(v->facts["parameters"], 17);
  EXPECT_EQ(v->facts["labels"], json({"neg", "pos"}));
  EXPECT_EQ(v->facts["model_type"], "bert");
  auto entry = catalog_->Get(Kind::kModel, "sentiment", kAlice);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->owner, "alice");
  EXPECT_EQ(entry->visibility, "private");
  EXPECT_EQ(entry->labels, (std::vector<std::string>{"neg", "pos"}));

  // The source changes or goes: the version does not.
  Put("models/m/sub/extra.txt", "overwritten");
  ASSERT_TRUE(store_->Delete("models/m/config.json").ok());
  auto resolved = catalog_->Resolve({Kind::kModel, "sentiment"}, kAlice);
  ASSERT_TRUE(resolved.has_value()) << resolved.error().ToString();
  EXPECT_EQ(resolved->key, "catalog/models/sentiment/1");
  EXPECT_EQ(*store_->GetString("catalog/models/sentiment/1/sub/extra.txt"), "extra");
  // Registering again from a source without config.json is refused, naming the field.
  auto refused = RegisterModel("sentiment", kAlice);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field(), "model.path");
  EXPECT_EQ(catalog_->Versions(Kind::kModel, "sentiment", kAlice)->size(), 1u) << "nothing half-registered stays";
}

TEST_F(CatalogTest, AFileChangedOnDiskIsDetectedAndNamed) {
  ASSERT_TRUE(RegisterModel("m1", kAlice).has_value());
  ASSERT_TRUE(catalog_->Resolve({Kind::kModel, "m1"}, kAlice).has_value());
  // The same size, one byte different.
  const fs::path f = File("catalog/models/m1/1/sub/extra.txt");
  fs::permissions(f, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(f, std::ios::binary | std::ios::trunc) << "extrA";
  auto r = catalog_->Resolve({Kind::kModel, "m1", 1}, kAlice);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("sub/extra.txt"), std::string::npos) << r.error().ToString();
  EXPECT_NE(r.error().message().find("SHA-256"), std::string::npos) << r.error().ToString();
  EXPECT_FALSE(catalog_->OpenFile(Kind::kModel, "m1", 1, "sub/extra.txt", kAlice).has_value());
  EXPECT_TRUE(catalog_->OpenFile(Kind::kModel, "m1", 1, "config.json", kAlice).has_value()) << "the others still serve";
  // A file nobody registered, in the version's directory: the version is refused as a whole
  // (readers load every file there).
  ASSERT_TRUE(RegisterModel("m5", kAlice).has_value());
  Put("catalog/models/m5/1/tokenizer.json", "{}");
  auto extra = catalog_->Resolve({Kind::kModel, "m5"}, kAlice);
  ASSERT_FALSE(extra.has_value());
  EXPECT_NE(extra.error().message().find("tokenizer.json"), std::string::npos) << extra.error().ToString();
  // A missing file too.
  fs::remove(File("catalog/models/m1/1/config.json"));
  auto gone = catalog_->OpenFile(Kind::kModel, "m1", 1, "config.json", kAlice);
  ASSERT_FALSE(gone.has_value());
  EXPECT_NE(gone.error().message().find("missing"), std::string::npos);
}

TEST_F(CatalogTest, PrivateEntriesAreInvisibleToOthersAndOnlyTheOwnerChangesThem) {
  ASSERT_TRUE(RegisterModel("m2", kAlice).has_value());
  for (const Caller& other : {kBob, kAnonymous}) {
    EXPECT_EQ(catalog_->Get(Kind::kModel, "m2", other).error().code(), StatusCode::kNotFound);
    EXPECT_EQ(catalog_->Resolve({Kind::kModel, "m2"}, other).error().code(), StatusCode::kNotFound);
    EXPECT_EQ(catalog_->Versions(Kind::kModel, "m2", other).error().code(), StatusCode::kNotFound);
    EXPECT_TRUE(catalog_->List({.kind = Kind::kModel}, other)->entries.empty());
  }
  EXPECT_EQ(RegisterModel("m2", kBob).error().code(), StatusCode::kAlreadyExists) << "the name is taken";
  EXPECT_TRUE(catalog_->Get(Kind::kModel, "m2", kAdmin).has_value());
  // Public: everyone reads it; only alice (or an admin) changes it.
  EntryFields pub;
  pub.visibility = Visibility::kPublic;
  EXPECT_EQ(catalog_->Update(Kind::kModel, "m2", pub, kBob).error().code(), StatusCode::kNotFound);
  ASSERT_TRUE(catalog_->Update(Kind::kModel, "m2", pub, kAlice).has_value());
  EXPECT_TRUE(catalog_->Resolve({Kind::kModel, "m2"}, kAnonymous).has_value());
  EXPECT_EQ(catalog_->List({.kind = Kind::kModel}, kAnonymous)->entries.size(), 1u);
  EXPECT_EQ(catalog_->Update(Kind::kModel, "m2", pub, kBob).error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(RegisterModel("m2", kBob).error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(catalog_->MoveAlias(Kind::kModel, "m2", "champion", 1, kBob).error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(catalog_->Delete(Kind::kModel, "m2", kBob).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(catalog_->Create(Kind::kModel, "m3", {}, kAnonymous).error().code(), StatusCode::kUnauthenticated);
  // Bad fields name themselves.
  EntryFields long_description;
  long_description.description = std::string(5000, 'x');
  EXPECT_EQ(catalog_->Update(Kind::kModel, "m2", long_description, kAlice).error().field(), "description");
  EntryFields bad_tag;
  bad_tag.tags = std::vector<std::string>{"ok", "Not OK"};
  EXPECT_EQ(catalog_->Update(Kind::kModel, "m2", bad_tag, kAlice).error().field(), "tags[1]");
  EXPECT_EQ(catalog_->Create(Kind::kModel, "Bad Name", {}, kAlice).error().field(), "name");
  EXPECT_EQ(catalog_->Create(Kind::kModel, std::string(65, 'a'), {}, kAlice).error().field(), "name");
  // Deleting removes the files too.
  ASSERT_TRUE(catalog_->Delete(Kind::kModel, "m2", kAlice).ok());
  EXPECT_FALSE(fs::exists(File("catalog/models/m2/1/config.json")));
}

TEST_F(CatalogTest, AliasesResolveMoveAndTellTheListener) {
  ASSERT_TRUE(RegisterModel("m4", kAlice).has_value());
  Put("models/m/sub/extra.txt", "second");
  ASSERT_TRUE(RegisterModel("m4", kAlice).has_value());
  std::vector<std::pair<int64_t, int64_t>> heard;
  catalog_->SetAliasListener([&](Kind, const std::string& name, const AliasEvent& e) {
    EXPECT_EQ(name, "m4");
    heard.emplace_back(e.from_version, e.to_version);
  });
  EXPECT_EQ(catalog_->Resolve({Kind::kModel, "m4", 0, "champion"}, kAlice).error().field(), "alias");
  ASSERT_TRUE(catalog_->MoveAlias(Kind::kModel, "m4", "champion", 1, kAlice).has_value());
  EXPECT_EQ(catalog_->Resolve({Kind::kModel, "m4", 0, "champion"}, kAlice)->version.version, 1);
  EXPECT_EQ(catalog_->Resolve({Kind::kModel, "m4"}, kAlice)->version.version, 2) << "latest";
  ASSERT_TRUE(catalog_->MoveAlias(Kind::kModel, "m4", "champion", 2, kAlice).has_value());
  EXPECT_EQ(catalog_->Resolve({Kind::kModel, "m4", 0, "champion"}, kAlice)->key, "catalog/models/m4/2");
  EXPECT_EQ(catalog_->MoveAlias(Kind::kModel, "m4", "champion", 7, kAlice).error().field(), "version");
  EXPECT_EQ(catalog_->MoveAlias(Kind::kModel, "m4", "Bad", 1, kAlice).error().field(), "alias");
  ASSERT_TRUE(catalog_->MoveAlias(Kind::kModel, "m4", "champion", 0, kAlice).has_value());
  EXPECT_EQ(heard, (std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 2}, {2, 0}}));
  auto history = catalog_->AliasHistory(Kind::kModel, "m4", 0, 100, kAlice);
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[1].by, "alice");
}

TEST_F(CatalogTest, ADatasetVersionKnowsItsFormatColumnsRowsAndPreview) {
  RegisterRequest r = DatasetRequest("reviews", "data/reviews.csv");
  auto v = catalog_->Register(r, kAlice);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ(v->facts["format"], "csv");
  EXPECT_EQ(v->facts["columns"], json({"text", "label"}));
  EXPECT_EQ(v->facts["rows"], 3);
  ASSERT_EQ(v->facts["preview"].size(), 3u);
  EXPECT_EQ(v->facts["preview"][1]["text"], "bad");
  auto resolved = catalog_->Resolve({Kind::kDataset, "reviews"}, kAlice);
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(resolved->key, "catalog/datasets/reviews/1/reviews.csv");
  r.source_key = "data/none.csv";
  EXPECT_EQ(catalog_->Register(r, kAlice).error().field(), "dataset.path");
  Put("data/broken.jsonl", "{\"a\": 1}\nnot json\n");
  r.source_key = "data/broken.jsonl";
  auto broken = catalog_->Register(r, kAlice);
  ASSERT_FALSE(broken.has_value());
  EXPECT_EQ(broken.error().field(), "dataset.path");
  EXPECT_EQ(catalog_->Versions(Kind::kDataset, "reviews", kAlice)->size(), 1u);
  storage::ListOptions second;
  second.prefix = "catalog/datasets/reviews/2/";
  EXPECT_TRUE(store_->List(second)->objects.empty()) << "a failed copy is removed";
}

// An IDX array of unsigned bytes (big-endian dimensions), as MNIST's files are.
std::string Idx(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return out + std::string(values.begin(), values.end());
}

// Image datasets are folders: registered whole, described by their images and classes, resolved
// to the folder; a text route's formats and a folder do not mix.
TEST_F(CatalogTest, AnImageDatasetVersionIsAFolderWithItsClassesAndImages) {
  Put("images/shapes/circle/a.png", "not decoded by the catalog");
  Put("images/shapes/circle/b.PNG", "x");
  Put("images/shapes/square/c.jpg", "x");
  Put("images/shapes/README.md", "beside the classes");
  RegisterRequest r = DatasetRequest("shapes", "images/shapes");
  auto v = catalog_->Register(r, kAlice);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ(v->files.size(), 4u);
  EXPECT_EQ(v->facts["format"], "image_folder");
  EXPECT_EQ(v->facts["images"], 3);
  EXPECT_EQ(v->facts["classes"], json::parse(R"([{"name": "circle", "images": 2}, {"name": "square", "images": 1}])"));
  EXPECT_EQ(v->facts["samples"], json({"circle/a.png", "square/c.jpg"}));
  EXPECT_EQ(v->facts["other_files"], 1);
  EXPECT_TRUE(IsFolderDataset(v->facts));
  auto resolved = catalog_->Resolve({Kind::kDataset, "shapes"}, kAlice);
  ASSERT_TRUE(resolved.has_value()) << resolved.error().ToString();
  EXPECT_EQ(resolved->key, "catalog/datasets/shapes/1");
  EXPECT_TRUE(fs::exists(File("catalog/datasets/shapes/1/square/c.jpg")));

  // IDX: guessed from the files; both splits counted, the labels' classes too.
  Put("images/digits/train-images-idx3-ubyte", Idx({3, 2, 2}, std::vector<uint8_t>(12, 7)));
  Put("images/digits/train-labels-idx1-ubyte", Idx({3}, {0, 2, 2}));
  Put("images/digits/t10k-images-idx3-ubyte", Idx({1, 2, 2}, std::vector<uint8_t>(4, 1)));
  Put("images/digits/t10k-labels-idx1-ubyte", Idx({1}, {1}));
  r.name = "digits";
  r.source_key = "images/digits";
  auto idx = catalog_->Register(r, kAlice);
  ASSERT_TRUE(idx.has_value()) << idx.error().ToString();
  EXPECT_EQ(idx->facts["format"], "idx");
  EXPECT_EQ(idx->facts["images"], 3);
  EXPECT_EQ(idx->facts["held_out_images"], 1);
  EXPECT_EQ(idx->facts["image_size"], json({2, 2}));
  EXPECT_EQ(idx->facts["classes"],
            json::parse(R"([{"name": "0", "images": 1}, {"name": "1", "images": 0}, {"name": "2", "images": 2}])"));

  // What is not an image dataset is refused, naming the field, and leaves no version behind.
  Put("images/bad-idx/train-images-idx3-ubyte", Idx({3, 2, 2}, std::vector<uint8_t>(12, 7)));
  Put("images/bad-idx/train-labels-idx1-ubyte", Idx({2}, {0, 1}));
  Put("images/empty/notes.txt", "no images");
  struct Case {
    std::string key, format, field;
  };
  for (const Case& c : {Case{"images/bad-idx", "", "dataset.path"}, Case{"images/empty", "", "dataset.path"},
                        Case{"images/shapes", "csv", "dataset.path"}, Case{"data/reviews.csv", "image_folder", "dataset.path"},
                        Case{"images/missing", "", "dataset.path"}, Case{"images/shapes", "idx", "dataset.path"}}) {
    r.name = "bad";
    r.source_key = c.key;
    r.dataset_format = c.format;
    auto bad = catalog_->Register(r, kAlice);
    ASSERT_FALSE(bad.has_value()) << c.key << " as " << c.format;
    EXPECT_EQ(bad.error().field(), c.field) << c.key << " as " << c.format << ": " << bad.error().ToString();
  }
  auto bad_versions = catalog_->Versions(Kind::kDataset, "bad", kAlice);
  EXPECT_TRUE(!bad_versions.has_value() || bad_versions->empty());

  // A folder over the dataset file limit is refused before anything is copied.
  Catalog small(*records_, *store_, {.max_dataset_files = 2});
  r.name = "shapes";
  r.source_key = "images/shapes";
  r.dataset_format = "";
  auto over = small.Register(r, kAlice);
  ASSERT_FALSE(over.has_value());
  EXPECT_NE(over.error().message().find("more than 2 files"), std::string::npos) << over.error().ToString();
}

TEST_F(CatalogTest, TheVersionAndFileLimitsAreEnforced) {
  Catalog small(*records_, *store_, {.max_version_bytes = 100});
  RegisterRequest r;
  r.name = "big";
  r.source_store = store_.get();
  r.source_key = "models/m";
  auto refused = small.Register(r, kAlice);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().field(), "model.path");
}

}  // namespace
}  // namespace mlaas::catalog

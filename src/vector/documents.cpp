#include "vector/documents.h"

#include <algorithm>

#include "common/text.h"
#include "dataset/record_reader.h"

namespace mlaas::vector {

using json = nlohmann::json;

Result<DocumentColumns> DocumentColumns::FromLoaderKwargs(const json& kwargs) {
  DocumentColumns c;
  if (kwargs.is_null()) return c;
  if (!kwargs.is_object()) return InvalidArgument("loader_kwargs must be an object", "dataset.loader_kwargs");
  const auto string_field = [&](const char* name, std::string* out) -> Status {
    auto it = kwargs.find(name);
    if (it == kwargs.end() || it->is_null()) return Status::Ok();
    if (!it->is_string() || it->get<std::string>().empty())
      return InvalidArgument(std::string(name) + " must be a column name", std::string("dataset.loader_kwargs.") + name);
    *out = it->get<std::string>();
    return Status::Ok();
  };
  MLAAS_RETURN_IF_ERROR(string_field("page_content_column", &c.text));
  MLAAS_RETURN_IF_ERROR(string_field("id_column", &c.id));
  if (auto m = kwargs.find("metadata_columns"); m != kwargs.end() && !m->is_null()) {
    if (!m->is_array()) return InvalidArgument("metadata_columns must be a list of column names", "dataset.loader_kwargs.metadata_columns");
    c.all_metadata = false;
    for (const auto& col : *m) {
      if (!col.is_string())
        return InvalidArgument("metadata_columns must be a list of column names", "dataset.loader_kwargs.metadata_columns");
      c.metadata.push_back(col.get<std::string>());
    }
  }
  return c;
}

namespace {

struct Opened {
  std::unique_ptr<dataset::RecordReader> reader;
  DocumentSource source;
};

Result<DocumentSource> Stat(const storage::ObjectRef& ref) {
  DocumentSource source;
  source.key = ref.key;
  source.storage_type = std::string(ref.store->storage_type());
  auto info = ref.store->Stat(ref.key);
  if (!info.has_value()) {
    if (info.error().code() == StatusCode::kNotFound)
      return InvalidArgument("no dataset '" + ref.key + "' in " + source.storage_type + " storage", "dataset.path");
    return info.error().WithField("dataset.path");
  }
  source.size = info->size;
  source.etag = info->etag;
  return source;
}

Result<Opened> Open(const storage::StorageRegistry& storage, const json& ds, const DocumentColumns& c) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(ds, "dataset"));
  MLAAS_ASSIGN_OR_RETURN(dataset::ReaderOptions options, dataset::ReaderOptionsFromRequest(ds, ref.key, "dataset"));
  Opened o;
  MLAAS_ASSIGN_OR_RETURN(o.source, Stat(ref));
  auto stream = ref.store->Open(ref.key);
  if (!stream.has_value()) return stream.error().WithField("dataset.path");
  auto reader = dataset::OpenRecordReader(std::move(*stream), options);
  if (!reader.has_value()) return reader.error().WithField("dataset.path");
  const auto& have = (*reader)->columns();
  auto check = [&](const std::string& column, const std::string& field) -> Status {
    if (std::find(have.begin(), have.end(), column) == have.end())
      return InvalidArgument("column '" + column + "' is not in " + ref.key + " (its columns: " + Join(have, ", ") + ")",
                             field);
    return Status::Ok();
  };
  MLAAS_RETURN_IF_ERROR(check(c.text, "dataset.loader_kwargs.page_content_column"));
  if (!c.id.empty()) MLAAS_RETURN_IF_ERROR(check(c.id, "dataset.loader_kwargs.id_column"));
  for (const auto& m : c.metadata) MLAAS_RETURN_IF_ERROR(check(m, "dataset.loader_kwargs.metadata_columns"));
  o.reader = std::move(reader).value();
  return o;
}

}  // namespace

Result<DocumentSource> StatDocuments(const storage::StorageRegistry& storage, const json& dataset_block) {
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(dataset_block, "dataset"));
  return Stat(ref);
}

Status NameIdColumn(const Status& st) {
  return st.code() == StatusCode::kAlreadyExists ? st.WithField("dataset.loader_kwargs.id_column") : st;
}

Result<DocumentSource> CheckDocuments(const storage::StorageRegistry& storage, const json& dataset_block,
                                      const DocumentColumns& columns) {
  MLAAS_ASSIGN_OR_RETURN(Opened o, Open(storage, dataset_block, columns));
  return o.source;
}

Result<std::vector<Document>> ReadDocuments(const storage::StorageRegistry& storage, const json& dataset_block,
                                            const DocumentColumns& c, DocumentSource* source,
                                            const std::function<Status(double, size_t)>& progress) {
  MLAAS_ASSIGN_OR_RETURN(Opened o, Open(storage, dataset_block, c));
  if (source) *source = o.source;
  auto& reader = *o.reader;
  const auto& columns = reader.columns();
  const auto index_of = [&](const std::string& name) {
    return static_cast<size_t>(std::find(columns.begin(), columns.end(), name) - columns.begin());
  };
  const size_t text_at = index_of(c.text);
  const size_t id_at = c.id.empty() ? columns.size() : index_of(c.id);
  std::vector<size_t> meta_at;
  for (size_t i = 0; i < columns.size(); ++i) {
    const bool listed = std::find(c.metadata.begin(), c.metadata.end(), columns[i]) != c.metadata.end();
    if (i != text_at && i != id_at && (c.all_metadata || listed)) meta_at.push_back(i);
  }
  std::vector<Document> docs;
  dataset::Row row;
  size_t rows = 0;
  for (;;) {
    auto next = reader.Next(row);
    if (!next.has_value()) {  // a malformed record: the dataset's error
      const Status& e = next.error();
      return e.field().empty() && e.code() == StatusCode::kInvalidArgument ? e.WithField("dataset.path") : e;
    }
    const bool more = *next;
    if (!more) break;
    ++rows;
    if (!row.missing[text_at] && !Trim(row.values[text_at]).empty()) {
      Document d;
      d.id = id_at < columns.size() ? row.values[id_at] : std::to_string(rows - 1);
      d.page_content = row.values[text_at];
      for (size_t i : meta_at) d.metadata[columns[i]] = row.missing[i] ? json() : json(row.values[i]);
      docs.push_back(std::move(d));
    }
    if (progress && rows % 4096 == 0) {
      const double f = o.source.size ? static_cast<double>(reader.bytes_read()) / static_cast<double>(o.source.size) : 0.0;
      MLAAS_RETURN_IF_ERROR(progress(f, docs.size()));
    }
  }
  if (docs.empty())
    return InvalidArgument("the dataset has no documents with text in '" + c.text + "'", "dataset.path");
  return docs;
}

}  // namespace mlaas::vector

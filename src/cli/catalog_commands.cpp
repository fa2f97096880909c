// `mlaas catalog ...` (models) and `mlaas datasets ...`: the client side of the registry
// (docs/catalog.md): ls, show, register, versions, alias, history, set, rm and pull.
#include <functional>
#include <iostream>

#include "catalog/catalog.h"
#include "cli/client_commands.h"
#include "cli/output.h"
#include "client/api_client.h"
#include "common/text.h"
#include "storage/digest.h"

namespace mlaas::cli {

using client::ApiClient;
using client::UrlEncode;
using nlohmann::json;

namespace {

// The rest of a paged list: while `page` has a next_cursor, the page `url(cursor)` names is
// fetched and its `items` appended to `page`'s.
Status AppendPages(ApiClient& c, json& page, const std::string& items, const std::function<std::string(const std::string&)>& url) {
  while (page["next_cursor"].is_string()) {
    const std::string cursor = page["next_cursor"].get<std::string>();
    auto next = c.Get(url(cursor));
    if (!next.has_value()) return next.error();
    for (auto& e : (*next)[items]) page[items].push_back(std::move(e));
    page["next_cursor"] = (*next)["next_cursor"];
    // A server that hands the same cursor back would be followed forever.
    if (page["next_cursor"] == cursor) return Status(StatusCode::kInternal, "the server repeated a page's cursor");
  }
  return Status::Ok();
}

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

struct KindArgs {
  std::string plural;  // "models" / "datasets"
  std::string one;     // "model" / "dataset"
};

// Fields of an entry given on the command line (register, set).
struct EntryArgs {
  std::string description, visibility, license, objective, tags;
  void AddTo(CLI::App* cmd) {
    cmd->add_option("--description", description, "One paragraph about it");
    cmd->add_option("--visibility", visibility, "private (default for a new entry) or public")
        ->check(CLI::IsMember({"private", "public"}));
    cmd->add_option("--license", license, "An SPDX identifier or a short name");
    cmd->add_option("--objective", objective, "What the model does (text-classification, ...)");
    cmd->add_option("--tags", tags, "Comma-separated lowercase tags");
  }
  void Into(json& body) const {
    if (!description.empty()) body["description"] = description;
    if (!visibility.empty()) body["visibility"] = visibility;
    if (!license.empty()) body["license"] = license;
    if (!objective.empty()) body["objective"] = objective;
    if (!tags.empty()) body["tags"] = Split(tags, ',');
  }
};

void PrintVersion(json v) {  // a copy: a missing key reads as null (an error), not past the end
  std::cout << Str(v, "reference") << "  " << Str(v, "digest") << "\n  " << v["file_count"].get<int64_t>() << " files, "
            << FormatBytes(v["size"].get<uint64_t>()) << ", registered by " << Str(v, "created_by") << " at "
            << Str(v, "created_at") << "\n";
  if (v.contains("facts") && !v["facts"].empty()) std::cout << "  facts: " << v["facts"].dump() << "\n";
}

void AddKind(CLI::App& app, const std::string& command, const std::string& help, KindArgs kind, ClientOptions& o,
             int* exit_code) {
  auto* root = app.add_subcommand(command, help);
  root->require_subcommand(1);
  const std::string base = "/api/v1/catalog/" + kind.plural;

  struct ListArgs {
    std::string q, tag, objective, owner, visibility, sort = "recent", cursor;
    int limit = 50;
    bool all = false;
  };
  auto la = std::make_shared<ListArgs>();
  auto* ls = root->add_subcommand("ls", "List registered " + kind.plural + ": public ones and your own");
  ls->add_option("query", la->q, "Text in the name, description or tags");
  ls->add_option("--tag", la->tag, "Only with this tag");
  ls->add_option("--objective", la->objective, "Only this objective");
  ls->add_option("--owner", la->owner, "Only this owner's");
  ls->add_option("--visibility", la->visibility, "public or private")->check(CLI::IsMember({"public", "private"}));
  ls->add_option("--sort", la->sort, "recent, popular or name")->check(CLI::IsMember({"recent", "popular", "name"}))
      ->capture_default_str();
  ls->add_option("--limit", la->limit, "Entries per page")->capture_default_str();
  ls->add_option("--cursor", la->cursor, "The next page (printed under the last one)");
  ls->add_flag("--all", la->all, "Every page, not only the first");
  ls->callback([&o, exit_code, la, base, kind] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto url = [&](const std::string& cursor) {
        return base + client::QueryString({{"q", la->q}, {"tag", la->tag}, {"objective", la->objective},
                                           {"owner", la->owner}, {"visibility", la->visibility}, {"sort", la->sort},
                                           {"limit", std::to_string(la->limit)}, {"cursor", cursor}});
      };
      auto r = c.Get(url(la->cursor));
      if (!r.has_value()) return ReportError(r.error());
      if (la->all) {
        if (Status st = AppendPages(c, *r, kind.plural, url); !st.ok()) return ReportError(st);
      }
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (json e : (*r)[kind.plural]) {
        const json& p = e["popularity"];
        rows.push_back({Str(e, "name"), Str(e, "latest_version"), Str(e, "owner"), Str(e, "visibility"), Str(e, "objective"),
                        std::to_string(p["downloads"].get<int64_t>() + p["predictions"].get<int64_t>() +
                                       p["deployments"].get<int64_t>()),
                        Str(e, "updated_at")});
      }
      PrintTable({"NAME", "LATEST", "OWNER", "VISIBILITY", "OBJECTIVE", "USES", "UPDATED"}, rows);
      if (!(*r)["next_cursor"].is_null()) std::cout << "more: --cursor " << (*r)["next_cursor"].get<std::string>() << "\n";
      return kExitOk;
    });
  });

  auto name = std::make_shared<std::string>();
  auto* show = root->add_subcommand("show", "A " + kind.one + ": owner, visibility, aliases, latest version, card");
  show->add_option("name", *name, "Its name")->required();
  show->callback([&o, exit_code, name, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Get(base + "/" + UrlEncode(*name));
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      const json& e = *r;
      std::cout << Str(e, "name") << " (" << Str(e, "visibility") << ", owner " << Str(e, "owner") << ")\n"
                << "  latest version: " << Str(e, "latest_version") << "   reference: " << Str(e, "reference") << "\n";
      if (!e["description"].get<std::string>().empty()) std::cout << "  " << Str(e, "description") << "\n";
      std::cout << "  objective: " << Str(e, "objective") << "   type: " << Str(e, "model_type")
                << "   license: " << Str(e, "license") << "   tags: " << Join(e["tags"].get<std::vector<std::string>>(), ",") << "\n";
      for (auto it = e["aliases"].begin(); it != e["aliases"].end(); ++it)
        std::cout << "  @" << it.key() << " -> version " << it.value().dump() << "\n";
      const json& p = e["popularity"];
      std::cout << "  downloads " << p["downloads"] << ", predictions " << p["predictions"] << ", deployments "
                << p["deployments"] << "\n";
      return kExitOk;
    });
  });

  struct RegisterArgs {
    std::string name, path, storage_type = "local", alias, format;
    EntryArgs entry;
  };
  auto ra = std::make_shared<RegisterArgs>();
  auto* reg = root->add_subcommand("register", "Register PATH (a " + kind.one + (kind.one == "model" ? " directory" : " file, or a folder of images") +
                                                   " in the server's storage) as the next version of NAME; the files are "
                                                   "copied, so later changes to PATH change nothing");
  reg->add_option("name", ra->name, "The " + kind.one + "'s name (created, yours, when new)")->required();
  reg->add_option("path", ra->path, "Its path in storage (as in requests' path)")->required();
  reg->add_option("--storage-type", ra->storage_type, "Where PATH is")->capture_default_str();
  reg->add_option("--alias", ra->alias, "Then point this alias (e.g. champion) at the new version");
  if (kind.one == "dataset")
    reg->add_option("--format", ra->format,
                    "csv, tsv or jsonl for a file (default: from the extension); image_folder or idx for a folder of "
                    "images (default: idx when it holds IDX files)");
  ra->entry.AddTo(reg);
  reg->callback([&o, exit_code, ra, base, kind] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      json body = {{kind.one, {{"path", ra->path}, {"storage_type", ra->storage_type}}}};
      if (!ra->format.empty()) body[kind.one]["format"] = ra->format;
      ra->entry.Into(body);
      auto r = c.Post(base + "/" + UrlEncode(ra->name) + "/versions", body);
      if (!r.has_value()) return ReportError(r.error());
      if (!ra->alias.empty()) {
        auto a = c.Send("PUT", base + "/" + UrlEncode(ra->name) + "/aliases/" + UrlEncode(ra->alias),
                        json{{"version", (*r)["version"]}});
        if (!a.has_value()) return ReportError(a.error());
      }
      if (o.json) {
        PrintJson(*r);
      } else {
        std::cout << "registered ";
        PrintVersion(*r);
        if (!ra->alias.empty()) std::cout << "  @" << ra->alias << " -> version " << (*r)["version"] << "\n";
      }
      return kExitOk;
    });
  });

  auto* versions = root->add_subcommand("versions", "The versions of a " + kind.one + ", newest first");
  auto vname = std::make_shared<std::string>();
  versions->add_option("name", *vname, "Its name")->required();
  versions->callback([&o, exit_code, vname, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto url = [&](const std::string& cursor) {
        return base + "/" + UrlEncode(*vname) + "/versions" + client::QueryString({{"limit", "1000"}, {"cursor", cursor}});
      };
      auto r = c.Get(url(""));
      if (!r.has_value()) return ReportError(r.error());
      if (Status st = AppendPages(c, *r, "versions", url); !st.ok()) return ReportError(st);  // every page
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (json v : (*r)["versions"])
        rows.push_back({Str(v, "version"), FormatBytes(v["size"].get<uint64_t>()), Str(v, "digest").substr(0, 19) + "...",
                        Str(v, "created_by"), Str(v, "created_at")});
      PrintTable({"VERSION", "SIZE", "DIGEST", "BY", "REGISTERED"}, rows);
      return kExitOk;
    });
  });

  struct AliasArgs {
    std::string name, alias;
    int64_t version = 0;
    bool remove = false;
  };
  auto aa = std::make_shared<AliasArgs>();
  auto* alias = root->add_subcommand("alias", "Point ALIAS of NAME at VERSION (create or move it), or --delete it; "
                                              "deployments of catalog://NAME@ALIAS follow");
  alias->add_option("name", aa->name, "The " + kind.one)->required();
  alias->add_option("alias", aa->alias, "The alias (champion, staging, ...)")->required();
  alias->add_option("version", aa->version, "The version it points at");
  alias->add_flag("--delete", aa->remove, "Delete the alias");
  alias->callback([&o, exit_code, aa, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      if (!aa->remove && aa->version <= 0) return ReportError(InvalidArgument("give the VERSION (or --delete)", "version"));
      const std::string path = base + "/" + UrlEncode(aa->name) + "/aliases/" + UrlEncode(aa->alias);
      auto r = aa->remove ? c.Delete(path) : c.Send("PUT", path, json{{"version", aa->version}});
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
      } else {
        std::cout << "@" << aa->alias << ": " << ((*r)["from_version"].is_null() ? "new" : "version " + (*r)["from_version"].dump())
                  << " -> " << ((*r)["to_version"].is_null() ? "deleted" : "version " + (*r)["to_version"].dump()) << "\n";
      }
      return kExitOk;
    });
  });

  auto hname = std::make_shared<std::string>();
  auto* history = root->add_subcommand("history", "The audit trail of NAME's alias moves: who, when, from, to");
  history->add_option("name", *hname, "The " + kind.one)->required();
  history->callback([&o, exit_code, hname, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Get(base + "/" + UrlEncode(*hname) + "/alias-history?limit=1000");
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (json e : (*r)["events"])
        rows.push_back({Str(e, "at"), Str(e, "alias"), Str(e, "from_version"), Str(e, "to_version"), Str(e, "by")});
      PrintTable({"AT", "ALIAS", "FROM", "TO", "BY"}, rows);
      return kExitOk;
    });
  });

  struct SetArgs {
    std::string name;
    EntryArgs entry;
  };
  auto sa = std::make_shared<SetArgs>();
  auto* set = root->add_subcommand("set", "Change a " + kind.one + "'s description, visibility (public/private), license, "
                                          "objective or tags");
  set->add_option("name", sa->name, "The " + kind.one)->required();
  sa->entry.AddTo(set);
  set->callback([&o, exit_code, sa, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      json body = json::object();
      sa->entry.Into(body);
      auto sent = c.Send("PATCH", base + "/" + UrlEncode(sa->name), body);
      if (!sent.has_value()) return ReportError(sent.error());
      const json& r = *sent;
      if (o.json) {
        PrintJson(r);
      } else {
        std::cout << Str(r, "name") << ": " << Str(r, "visibility") << ", updated " << Str(r, "updated_at") << "\n";
      }
      return kExitOk;
    });
  });

  auto rname = std::make_shared<std::string>();
  auto* rm = root->add_subcommand("rm", "Delete a " + kind.one + " with all its versions and aliases");
  rm->add_option("name", *rname, "The " + kind.one)->required();
  rm->callback([&o, exit_code, rname, base] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      if (auto r = c.Delete(base + "/" + UrlEncode(*rname)); !r.has_value()) return ReportError(r.error());
      std::cout << "deleted " << *rname << "\n";
      return kExitOk;
    });
  });

  struct PullArgs {
    std::string ref, dir;
  };
  auto pa = std::make_shared<PullArgs>();
  auto* pull = root->add_subcommand("pull", "Download the version REF names (catalog://name[/n|@alias], or a name) into "
                                            "DIR, each file checked against its SHA-256: a directory Hugging Face "
                                            "transformers loads as is");
  pull->add_option("ref", pa->ref, "catalog://<name>[/<version>|@<alias>], or just the name (latest)")->required();
  pull->add_option("dir", pa->dir, "Where to write the files")->required();
  pull->callback([&o, exit_code, pa, base, kind] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      std::string ref = pa->ref;
      if (!catalog::IsReference(ref)) ref = std::string(catalog::kScheme) + (kind.one == "dataset" ? "datasets/" : "") + ref;
      auto v = c.Get("/api/v1/catalog/resolve" + client::QueryString({{"ref", ref}}));
      if (!v.has_value()) return ReportError(v.error());
      const std::filesystem::path dir = pa->dir;
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return ReportError(InvalidArgument("cannot create " + dir.string() + ": " + ec.message()));
      ProgressLine line;
      uint64_t total = 0;
      for (json f : (*v)["files"]) {
        const std::string path = f.at("path");
        auto under = client::LocalPathUnder(dir, path);
        if (!under.has_value()) return ReportError(under.error());
        const std::filesystem::path dest = *under;
        const std::string sha256 = f.at("sha256");
        std::filesystem::create_directories(dest.parent_path(), ec);
        const std::string kind_base = "/api/v1/catalog/" + (*v).value("kind", std::string("model")) + "s";
        auto n = c.Download(kind_base + "/" + UrlEncode((*v)["name"].get<std::string>()) + "/versions/" +
                                std::to_string((*v)["version"].get<int64_t>()) + "/files/" + UrlEncode(path, true),
                            dest, [&](uint64_t done, uint64_t size) {
                              if (size > 0) line.Update(static_cast<double>(done) / size, path);
                            },
                            // Checked before it replaces a file already there: a bad download
                            // leaves a good copy as it was.
                            [&](const std::filesystem::path& downloaded) -> Status {
                              auto sha = storage::Sha256OfFile(downloaded);
                              if (!sha.has_value()) return sha.error();
                              if (*sha != sha256)
                                return Status(StatusCode::kInternal, path + " does not match its SHA-256: download it again");
                              return Status::Ok();
                            });
        if (!n.has_value()) return ReportError(n.error());
        total += *n;
      }
      line.Finish();
      if (o.json) {
        PrintJson(*v);
      } else {
        std::cout << "pulled " << (*v)["reference"].get<std::string>() << " (" << (*v)["files"].size() << " files, "
                  << FormatBytes(total) << ", " << (*v)["digest"].get<std::string>() << ") into " << dir.string() << "\n";
      }
      return kExitOk;
    });
  });
}

}  // namespace

void AddCatalogCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  AddKind(app, "catalog", "The model registry: ls, show, register, versions, alias, history, set, rm, pull",
          {"models", "model"}, o, exit_code);
  AddKind(app, "datasets", "The dataset registry: ls, show, register, versions, alias, history, set, rm, pull",
          {"datasets", "dataset"}, o, exit_code);
}

}  // namespace mlaas::cli

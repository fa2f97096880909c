// `mlaas login|logout|whoami` and `mlaas tokens create|ls|revoke`: the client side of accounts
// (docs/security.md, "Accounts and tokens").
#include <iostream>

#include "cli/client_commands.h"
#include "cli/output.h"
#include "client/api_client.h"
#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"

namespace mlaas::cli {

using client::ApiClient;
using nlohmann::json;

namespace {

std::string Normalized(std::string server) {
  while (!server.empty() && server.back() == '/') server.pop_back();
  return server;
}

// The credentials file with `server` -> `token` (empty: removed), written atomically in a
// directory only the user can read.
Status StoreToken(const std::string& server, const std::string& token) {
  const auto path = CredentialsFile();
  json all = json::object();
  if (auto stored = ReadJsonFile(path, "credentials", {}, {.max_bytes = 1 << 20}); stored.has_value() && stored->is_object())
    all = *stored;
  if (token.empty()) {
    all.erase(Normalized(server));
  } else {
    all[Normalized(server)] = token;
  }
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::filesystem::permissions(path.parent_path(), std::filesystem::perms::owner_all, ec);
  return WriteFileAtomic(path, all.dump(1) + "\n", 0600);
}

std::string Scopes(const json& j) {
  std::vector<std::string> s;
  for (const auto& x : j) s.push_back(x.get<std::string>());
  return Join(s, ",");
}

}  // namespace

void AddAccountCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  auto* login = app.add_subcommand("login", "Store an API token for --server (read from stdin unless --token is given), "
                                            "after checking it with the server");
  login->callback([&o, exit_code] {
    ClientOptions with = o;
    if (with.token.empty()) {
      std::cerr << "token for " << Normalized(o.server) << ": " << std::flush;
      std::getline(std::cin, with.token);
      with.token = std::string(Trim(with.token));
    }
    if (with.token.empty()) {
      *exit_code = ReportError(InvalidArgument("no token given", "token"));
      return;
    }
    *exit_code = WithClient(with, [&](ApiClient& c) {
      auto me = c.Get("/api/v1/whoami");
      if (!me.has_value()) return ReportError(me.error());
      if ((*me)["auth"] == "off") std::cerr << "note: this server runs with auth off; it does not check tokens\n";
      if (Status st = StoreToken(o.server, with.token); !st.ok()) return ReportError(st);
      std::cout << "logged in to " << Normalized(o.server) << " as " << (*me)["user"].get<std::string>() << " ("
                << Scopes((*me)["scopes"]) << "); the token is in " << CredentialsFile().string() << "\n";
      return kExitOk;
    });
  });

  auto* logout = app.add_subcommand("logout", "Forget the token stored for --server");
  logout->callback([&o, exit_code] {
    if (Status st = StoreToken(o.server, ""); !st.ok()) {
      *exit_code = ReportError(st);
      return;
    }
    std::cout << "logged out of " << Normalized(o.server) << "\n";
    *exit_code = kExitOk;
  });

  auto* whoami = app.add_subcommand("whoami", "The user and scopes of the token in use (GET /api/v1/whoami)");
  whoami->callback([&o, exit_code] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto me = c.Get("/api/v1/whoami");
      if (!me.has_value()) return ReportError(me.error());
      if (o.json) {
        PrintJson(*me);
      } else {
        std::cout << (*me)["user"].get<std::string>() << " (" << Scopes((*me)["scopes"]) << "; auth "
                  << (*me)["auth"].get<std::string>() << ")\n";
      }
      return kExitOk;
    });
  });

  auto* tokens = app.add_subcommand("tokens", "API tokens: create (admin), ls, revoke");
  tokens->require_subcommand(1);
  struct CreateArgs {
    std::string user, scopes = "read", description;
    int64_t expires_in = 0;
  };
  auto args = std::make_shared<CreateArgs>();
  auto* create = tokens->add_subcommand("create", "Make a token for USER (POST /api/v1/tokens); prints it once");
  create->add_option("user", args->user, "The user (created when new)")->required();
  create->add_option("--scopes", args->scopes, "Comma-separated: read, write, admin")->capture_default_str();
  create->add_option("--expires-in", args->expires_in, "Seconds until it expires (0: never)")->capture_default_str();
  create->add_option("--description", args->description, "What it is for");
  create->callback([&o, exit_code, args] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      json body = {{"user", args->user}, {"scopes", Split(args->scopes, ',')}, {"expires_in", args->expires_in}};
      if (!args->description.empty()) body["description"] = args->description;
      auto r = c.Post("/api/v1/tokens", body);
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
      } else {
        std::cout << (*r)["token"].get<std::string>() << "\n";
        std::cerr << "token " << (*r)["id"].get<std::string>() << " for " << args->user << " (" << Scopes((*r)["scopes"])
                  << "): shown this once; `mlaas login` stores it\n";
      }
      return kExitOk;
    });
  });
  auto user_filter = std::make_shared<std::string>();
  auto* ls = tokens->add_subcommand("ls", "Tokens without their secrets: yours (an admin: everyone's)");
  ls->add_option("--user", *user_filter, "An admin: only this user's");
  ls->callback([&o, exit_code, user_filter] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Get("/api/v1/tokens" + (user_filter->empty() ? "" : client::QueryString({{"user", *user_filter}})));
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (json t : (*r)["tokens"]) {
        rows.push_back({t["id"].get<std::string>(), t["user"].get<std::string>(), Scopes(t["scopes"]),
                        t["created_at"].get<std::string>(), t["expires_at"].is_null() ? "never" : t["expires_at"].get<std::string>(),
                        t["last_used_at"].is_null() ? "-" : t["last_used_at"].get<std::string>(),
                        t["revoked"].get<bool>() ? "revoked" : "live", t["description"].get<std::string>()});
      }
      PrintTable({"ID", "USER", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE", "DESCRIPTION"}, rows);
      return kExitOk;
    });
  });
  auto revoke_id = std::make_shared<std::string>();
  auto* revoke = tokens->add_subcommand("revoke", "Revoke a token by its id (yours; an admin: any)");
  revoke->add_option("id", *revoke_id, "The token's id (from `mlaas tokens ls`)")->required();
  revoke->callback([&o, exit_code, revoke_id] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Delete("/api/v1/tokens/" + client::UrlEncode(*revoke_id));
      if (!r.has_value()) return ReportError(r.error());
      std::cout << "revoked " << *revoke_id << "\n";
      return kExitOk;
    });
  });
}

}  // namespace mlaas::cli

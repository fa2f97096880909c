#include "api/ownership.h"

#include <gtest/gtest.h>

namespace mlaas::api {
namespace {

// Answers show a user's keys without their home: where a key starts, once.
TEST(OwnershipTest, StripHomeCutsTheHomeWhereAKeyStartsOnce) {
  const std::string home = "users/bob/";
  EXPECT_EQ(StripHome(home, R"({"key":"users/bob/models/m1"})"), R"({"key":"models/m1"})");
  EXPECT_EQ(StripHome(home, "cannot read users/bob/a and 'users/bob/b'"), "cannot read a and 'b'");
  // Bob's own key "users/bob/z" is home + "users/bob/z": shown as he named it.
  EXPECT_EQ(StripHome(home, R"({"key":"users/bob/users/bob/z"})"), R"({"key":"users/bob/z"})");
  // Inside a key it is part of the name.
  EXPECT_EQ(StripHome(home, R"({"key":"users/bob/data/users/bob/x"})"), R"({"key":"data/users/bob/x"})");
  EXPECT_EQ(StripHome(home, "myusers/bob/x"), "myusers/bob/x");
  // After a JSON escape (a dumped "line\nusers/bob/x") a key starts.
  EXPECT_EQ(StripHome(home, R"({"m":"saved\nusers/bob/m1"})"), R"({"m":"saved\nm1"})");
  EXPECT_EQ(StripHome("", "users/bob/x"), "users/bob/x");
  EXPECT_EQ(StripHome(home, "users/bob/"), "");
  // A JSON string that starts with the home is a key: the rest is its name, a space, a plus or
  // an escaped quote in it included (a key "sp/x users/bob/y.txt" once showed as "sp/x y.txt").
  EXPECT_EQ(StripHome(home, R"({"key":"users/bob/sp/x users/bob/y.txt","k2":"users/bob/a+users/bob/b"})"),
            R"({"key":"sp/x users/bob/y.txt","k2":"a+users/bob/b"})");
  EXPECT_EQ(StripHome(home, R"(["users/bob/q\"users/bob/r", "see 'users/bob/s'"])"), R"(["q\"users/bob/r", "see 's'"])");
  EXPECT_EQ(StripHome(home, R"({"key":"users/bob/open)"), R"({"key":"open)");
}

}  // namespace
}  // namespace mlaas::api

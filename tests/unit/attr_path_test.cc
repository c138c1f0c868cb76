#include "attr_path.hh"
#include "attr_path_list.hh"
#include "json_parse.hh"

#include <gtest/gtest.h>

using evolive::parseAttrPathList;
using evolive::showAttrPath;

TEST(AttrPath, PlainNamesJoinWithDots)
{
    EXPECT_EQ(showAttrPath({"pythonPackages", "python-pkg-0"}), "pythonPackages.python-pkg-0");
    EXPECT_EQ(showAttrPath({"a_b'c"}), "a_b'c");
}

TEST(AttrPath, NamesThatAreNotIdentifiersAreQuoted)
{
    EXPECT_EQ(showAttrPath({"a.b", "c"}), "\"a.b\".c");
    EXPECT_EQ(showAttrPath({"with space"}), "\"with space\"");
    EXPECT_EQ(showAttrPath({"3d"}), "\"3d\"");
    EXPECT_EQ(showAttrPath({""}), "\"\"");
    EXPECT_EQ(showAttrPath({"héllo"}), "\"héllo\"");
    EXPECT_EQ(showAttrPath({"-x"}), "\"-x\"");
}

TEST(AttrPath, QuotesBackslashesAndInterpolationAreEscaped)
{
    EXPECT_EQ(showAttrPath({"say \"hi\""}), R"("say \"hi\"")");
    EXPECT_EQ(showAttrPath({"back\\slash"}), R"("back\\slash")");
    EXPECT_EQ(showAttrPath({"${x}"}), R"("\${x}")");
    EXPECT_EQ(showAttrPath({"$x"}), R"("$x")");
}

TEST(AttrPath, KeywordsAreQuoted)
{
    EXPECT_EQ(showAttrPath({"let", "in"}), "\"let\".\"in\"");
    EXPECT_EQ(showAttrPath({"true"}), "true");
}

TEST(AttrPath, DifferentPathsNeverShowTheSame)
{
    EXPECT_NE(showAttrPath({"a.b"}), showAttrPath({"a", "b"}));
    EXPECT_NE(showAttrPath({"a\"", "b"}), showAttrPath({"a\".\"b"}));
}

TEST(AttrPathList, KeepsEachPathOnceInOrder)
{
    using Paths = std::vector<evolive::AttrPath>;
    EXPECT_EQ(parseAttrPathList(R"([["b"], [], ["a.b", "c"], ["b"]])"), (Paths{{"b"}, {}, {"a.b", "c"}}));
    EXPECT_EQ(parseAttrPathList("[]"), Paths{});
}

TEST(AttrPathList, RefusesWhatIsNotAListOfPaths)
{
    EXPECT_THROW(parseAttrPathList(R"({"a": ["b"]})"), std::invalid_argument);
    EXPECT_THROW(parseAttrPathList(R"([["a", null]])"), std::invalid_argument);
    EXPECT_THROW(parseAttrPathList(R"(["a"])"), std::invalid_argument);
    EXPECT_THROW(parseAttrPathList(R"([[["a"]]])"), evolive::JsonParseError);
    EXPECT_THROW(parseAttrPathList("[[\"a\"]"), evolive::JsonParseError);
}

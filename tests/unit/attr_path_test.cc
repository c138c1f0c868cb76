#include "attr_path.hh"

#include <gtest/gtest.h>

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

// The parts of the Hydra bridge that need no database: hydra.conf's format,
// the meta mapping, the evaluator's arguments and flags, names and URLs.
#include "build_row.hh"
#include "config_file.hh"
#include "database.hh"
#include "eval_arguments.hh"
#include "input_fetch.hh"
#include "local_evaluator.hh"
#include "notifications.hh"
#include "settings.hh"

#include <gtest/gtest.h>

namespace evolive::hydra {

using nlohmann::json;

TEST(HydraConfigFile, ConfigGeneralSyntax)
{
    auto c = parseConfigText("# a comment\n"
                             "evaluator_workers = 4\n"
                             "evaluator_max_memory_size 2048   # trailing comment\n"
                             "quoted = \"a value with spaces\"\n"
                             "hash = a\\#b\n"
                             "long = one \\\n"
                             "  two\n"
                             "text <<EOT\n"
                             "line 1\n"
                             "line 2\n"
                             "EOT\n"
                             "<git-input>\n"
                             "  timeout = 400\n"
                             "  <tests:jobset:src>\n"
                             "    timeout = 30\n"
                             "  </tests:jobset:src>\n"
                             "</git-input>\n"
                             "<hydra_notify prometheus>\n"
                             "  port = 9199\n"
                             "</hydra_notify>\n"
                             "evaluator_workers = 5\n",
                             "/etc/hydra/hydra.conf");
    EXPECT_EQ(c.get("evaluator_workers"), "5") << "the last value wins";
    EXPECT_EQ(c.get("evaluator_max_memory_size"), "2048");
    EXPECT_EQ(c.get("quoted"), "a value with spaces");
    EXPECT_EQ(c.get("hash"), "a#b");
    EXPECT_EQ(c.get("long"), "one two");
    EXPECT_EQ(c.get("text"), "line 1\nline 2");
    ASSERT_NE(c.section("git-input"), nullptr);
    EXPECT_EQ(c.section("git-input")->get("timeout"), "400");
    EXPECT_EQ(c.section("git-input")->section("tests:jobset:src")->get("timeout"), "30");
    EXPECT_EQ(c.section("hydra_notify")->section("prometheus")->get("port"), "9199");
    EXPECT_EQ(c.get("missing"), std::nullopt);

    HydraSettings s;
    s.config = c;
    EXPECT_EQ(s.gitTimeout("tests", "jobset", "src").count(), 30);
    EXPECT_EQ(s.gitTimeout("tests", "other", "src").count(), 400);
    EXPECT_EQ(HydraSettings{}.gitTimeout("p", "j", "i").count(), 600);
}

TEST(HydraConfigFile, ErrorsNameFileAndLine)
{
    auto fails = [](const std::string & text) {
        try {
            parseConfigText(text, "/x/hydra.conf");
        } catch (ConfigError & e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(fails("a = 1\n<block>\nb = 2\n"), "/x/hydra.conf:2: <block> is never closed");
    EXPECT_EQ(fails("</block>\n"), "/x/hydra.conf:1: '</block>' closes no block");
    EXPECT_EQ(fails("<a>\n</b>\n"), "/x/hydra.conf:2: '</b>' does not close <a> (line 1)");
    EXPECT_EQ(fails("text <<EOT\nno end\n"), "/x/hydra.conf:1: here-document 'EOT' is never closed");
    EXPECT_EQ(fails("include /nonexistent/other.conf\n"), "/x/hydra.conf:1: cannot read /nonexistent/other.conf");
}

TEST(HydraSettings, DatabaseNames)
{
    EXPECT_EQ(dsnToConninfo("dbi:Pg:dbname=hydra;host=db.example.org;port=5433"),
              "dbname='hydra' host='db.example.org' port='5433'");
    EXPECT_EQ(dsnToConninfo("dbi:Pg:dbname=hydra;user=o'neil"), "dbname='hydra' user='o\\'neil'");
    EXPECT_THROW(dsnToConninfo("dbi:SQLite:dbname=x"), SettingsError);
    EXPECT_EQ(redactedUrl("postgres://hydra:secret@db/hydra"), "postgres://hydra:***@db/hydra");
    EXPECT_EQ(redactedUrl("dbname=hydra password=secret host=x"), "dbname=hydra password=*** host=x");
    EXPECT_EQ(redactedUrl("postgres:///hydra?host=/run/postgresql"), "postgres:///hydra?host=/run/postgresql");
}

TEST(HydraBuildRow, MetaAsHydraMapsIt)
{
    auto job = json::parse(R"({"attr": "pkgs.hello", "name": "hello-2.12", "system": "x86_64-linux",
        "drvPath": "/nix/store/aaaa-hello-2.12.drv",
        "outputs": {"out": "/nix/store/bbbb-hello-2.12", "dev": "/nix/store/cccc-hello-2.12-dev"},
        "meta": {"description": "A program", "license": [{"shortName": "GPL-3.0"}, {"fullName": "no short name"}, "MIT", [{"shortName": "deep"}]],
                 "maintainers": [{"email": "a@b"}, {"github": "x"}, {"email": "c@d"}],
                 "homepage": 0, "schedulingPriority": "7", "isChannel": true, "maxSilent": 3.5, "timeout": 60}})");
    auto row = buildRowFor(job, false);
    EXPECT_EQ(row.job, "pkgs.hello");
    EXPECT_EQ(row.nixName, "hello-2.12");
    EXPECT_EQ(row.firstOutputName, "dev") << "outputs by name, as Perl's sort";
    EXPECT_EQ(row.firstOutputPath, "/nix/store/cccc-hello-2.12-dev");
    EXPECT_EQ(row.description, "A program");
    EXPECT_EQ(row.license, "GPL-3.0, MIT, deep");
    EXPECT_EQ(row.maintainers, "a@b, c@d");
    EXPECT_EQ(row.homepage, std::nullopt) << "0 is false to Perl";
    EXPECT_EQ(row.priority, 7);
    EXPECT_EQ(row.isChannel, 1);
    EXPECT_EQ(row.maxSilent, std::nullopt) << "3.5 is no integer";
    EXPECT_EQ(row.timeout, 60);
    EXPECT_EQ(row.constituents, std::nullopt);

    auto bare = json::parse(R"({"attr": "x", "drvPath": "/nix/store/a-x.drv", "outputs": {"out": null}, "meta": null,
                                "constituents": ["/nix/store/c-y.drv"]})");
    row = buildRowFor(bare, true);
    EXPECT_EQ(row.firstOutputPath, std::nullopt) << "a content-addressed output";
    EXPECT_EQ(row.maxSilent, 7200);
    EXPECT_EQ(row.timeout, 36000);
    EXPECT_EQ(row.priority, 100);
    EXPECT_EQ(row.constituents, "[\"/nix/store/c-y.drv\"]");

    EXPECT_THROW(buildRowFor(json::parse(R"({"attr": "x", "drvPath": "/nix/store/a-x.drv", "outputs": {}})"), false), JobError);
    EXPECT_THROW(buildRowFor(json::parse(R"({"attr": "x", "outputs": {"out": "/nix/store/b"}})"), false), JobError);
    EXPECT_EQ(perlText(json(1e20)), "1e+20");
    EXPECT_EQ(perlText(json(false)), "0");
}

TEST(HydraArguments, AsHydraPassesThem)
{
    InputInfo inputs;
    FetchedInput git;
    git.type = "git";
    git.storePath = "/nix/store/abc-repo";
    git.uri = "https://example.org/repo.git";
    git.revision = "0123456789abcdef0123456789abcdef01234567";
    git.revCount = 12;
    git.gitTag = "v1-2-g0123456";
    git.shortRev = "0123456";
    inputs["src"].push_back(git);
    FetchedInput label;
    label.type = "string";
    label.value = "a \"quoted\" value";
    inputs["label"].push_back(label);
    FetchedInput flag;
    flag.type = "boolean";
    flag.value = "false";
    inputs["flag"].push_back(flag);
    FetchedInput eval;
    eval.type = "eval";
    eval.jobs = std::map<std::string, std::string>{{"b.x", "/nix/store/b-x"}, {"a", "/nix/store/a"}};
    inputs["deps"].push_back(eval);
    auto args = inputsToArgs(inputs);
    EXPECT_EQ(args, (std::vector<std::string>{
                        "--arg", "deps", "{ a = builtins.storePath /nix/store/a; b.x = builtins.storePath /nix/store/b-x; }",
                        "--arg", "flag", "false",
                        "--argstr", "label", "a \"quoted\" value",
                        "-I", "src=/nix/store/abc-repo",
                        "--arg", "src",
                        "{ outPath = builtins.storePath /nix/store/abc-repo; inputType = \"git\"; "
                        "uri = \"https://example.org/repo.git\"; rev = \"0123456789abcdef0123456789abcdef01234567\"; "
                        "revCount = 12; gitTag = \"v1-2-g0123456\"; shortRev = \"0123456\";}"}));
    // Hydra's "@args" in sha256_hex: joined by single spaces.
    EXPECT_EQ(argumentsHash(std::string("src"), std::string("release.nix"), {"-I", "x=y"}),
              "5a8be281635816d37c33f2172e42fd8cbffe3f009f17c5a01f2f0d75493a3e1b");
    // A flake jobset: no expression, no inputs ("@args" of two empty strings: one space).
    EXPECT_EQ(argumentsHash(std::nullopt, std::nullopt, {}),
              "36a9e7f1c95b82ffb99743e0c5c4ce95d83c9a430aac59f84ef3cbfab6145068");

    inputs["label"].push_back(label);
    EXPECT_THROW(inputsToArgs(inputs), InputsError);

    FetchedInput hostile;
    hostile.type = "path";
    hostile.storePath = "/nix/store/p";
    hostile.uri = "/srv/a\"; x = ${builtins.throw \"y\"}";
    EXPECT_EQ(inputAttrSet(hostile), "{ outPath = builtins.storePath /nix/store/p; inputType = \"path\"; "
                                     "uri = \"/srv/a\\\"; x = \\${builtins.throw \\\"y\\\"}\";}")
        << "values cannot break out of their strings";
}

TEST(HydraArguments, HydrasEvaluatorFlags)
{
    HydraSettings s;
    s.gcRootsDir = "/nix/var/nix/gcroots/per-user/hydra/hydra-roots";
    s.workers = 3;
    s.maxMemoryMiB = 2048;
    JobsetRecord jobset;
    jobset.nixExprInput = "src";
    jobset.nixExprPath = "release.nix";
    auto args = evaluatorArguments(s, jobset, {"-I", "src=/nix/store/x"}, std::nullopt);
    EXPECT_EQ(args, (std::vector<std::string>{"--option", "restrict-eval", "true", "<src/release.nix>", "-I",
                                              "src=/nix/store/x", "--gc-roots-dir", s.gcRootsDir, "--max-jobs", "1",
                                              "--meta", "--constituents", "--force-recurse", "--option",
                                              "allow-import-from-derivation", "false", "--workers", "3",
                                              "--max-memory-size", "2048"}));
    s.allowImportFromDerivation = true;
    args = evaluatorArguments(s, jobset, {}, std::nullopt);
    EXPECT_EQ(std::count(args.begin(), args.end(), "allow-import-from-derivation"), 0);

    // nix-eval-jobs gets Hydra's own flake flags.
    s.evaluator = "/usr/bin/nix-eval-jobs";
    args = evaluatorArguments(s, jobset, {}, std::string("git+https://example.org/f?rev=abc"));
    EXPECT_EQ(std::vector<std::string>(args.begin(), args.begin() + 7),
              (std::vector<std::string>{"--option", "eval-cache", "false", "--flake", "git+https://example.org/f?rev=abc",
                                        "--select",
                                        "flake: flake.outputs.hydraJobs or flake.outputs.checks or (throw \"flake does "
                                        "not provide any Hydra jobs or checks\")"}));
}

TEST(HydraInputNames, GitUrisAndCheckoutNames)
{
    EXPECT_EQ(checkoutName("https://github.com/NixOS/nixpkgs.git"), "nixpkgs");
    EXPECT_EQ(checkoutName("https://github.com/NixOS/nixpkgs/"), "nixpkgs");
    EXPECT_EQ(checkoutName("git@github.com:NixOS/patchelf.git"), "patchelf");
    EXPECT_EQ(checkoutName("host:repo"), "repo");
    EXPECT_EQ(checkoutName("file:///srv/my repo"), "my_repo");
    EXPECT_EQ(gitSourceForUri("/srv/git/repo").url, "file:///srv/git/repo");
    EXPECT_EQ(gitSourceForUri("git@github.com:NixOS/nix.git").url, "ssh://git@github.com/~/NixOS/nix.git");
    EXPECT_EQ(gitSourceForUri("host:/abs/repo").url, "ssh://host/abs/repo");
    EXPECT_EQ(gitSourceForUri("https://example.org/r.git").url, "https://example.org/r.git");
    EXPECT_THROW(gitSourceForUri("ext::sh -c evil"), JobsetError);
    EXPECT_THROW(gitSourceForUri("-oProxyCommand=x:y"), JobsetError);
}

TEST(HydraNotifications, TraceIdAndPayloads)
{
    auto id = makeTraceId();
    EXPECT_NE(id.find('.'), std::string::npos);
    EXPECT_EQ(id.substr(id.rfind('.') + 1), std::to_string(getpid()));
    EXPECT_EQ(payload({"t", "1", "2"}), "t\t1\t2");
}

} // namespace evolive::hydra

// One Pusher used by many threads at once, as the server uses it: a path
// two pushes need is uploaded once, dependents still wait until their
// references are in the cache, and the caps on pushes and uploads at once
// hold; one push's closure walk checks several paths at once, each once,
// and does not look past a path in the cache. The cache is a real
// directory behind a decorator that counts and can hold writes and checks.
#include "narinfo.hh"
#include "push_session.hh"
#include "subprocess.hh"

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <gtest/gtest.h>
#include <latch>
#include <list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

using namespace evolive::test;
using namespace evolive::cache;
namespace fs = std::filesystem;

namespace {

// Counts the writes and checks (exists) per key, checks that each
// narinfo's references are in the cache when it is written, holds narinfo
// writes while the test says so, and can hold checks until several are
// under way at once.
class RecordingCache : public BinaryCache
{
public:
    explicit RecordingCache(BinaryCache & inner) : inner_(inner) {}

    bool exists(const std::string & key) override
    {
        std::unique_lock lock(mutex_);
        if (key == heldCheck_) {
            checkWaiting_ = true;
            changed_.notify_all();
            changed_.wait(lock, [&] { return heldCheck_ != key; });
            checkWaiting_ = false;
        }
        ++exists_[key];
        checking_.insert(key);
        mostChecking_ = std::max(mostChecking_, checking_.size());
        changed_.notify_all();
        if (gather_.count(key)) {
            // Until every key to gather is being checked at once; a walk that
            // checks one path at a time never gets there (the gate then
            // opens for good after a while, so that the test ends).
            if (!changed_.wait_for(lock, std::chrono::seconds(5), [&] {
                    return gathered_ || std::includes(checking_.begin(), checking_.end(), gather_.begin(), gather_.end());
                }))
                timedOut_ = true;
            gathered_ = true;
            changed_.notify_all();
        }
        lock.unlock();
        bool found = inner_.exists(key);
        lock.lock();
        checking_.erase(key);
        return found;
    }
    std::string describe() const override { return inner_.describe(); }

    // The inner cache's listing once allowed; none (nullopt) before.
    std::optional<std::vector<std::string>> narinfoKeys(size_t limit) override
    {
        {
            std::lock_guard lock(mutex_);
            ++listings_;
            if (!listing_) return std::nullopt;
        }
        return inner_.narinfoKeys(limit);
    }
    void allowListing()
    {
        std::lock_guard lock(mutex_);
        listing_ = true;
    }
    size_t listings()
    {
        std::lock_guard lock(mutex_);
        return listings_;
    }

    void put(const std::string & key, std::string_view data, const std::string & contentType) override
    {
        std::unique_lock lock(mutex_);
        ++puts_[key];
        if (key.ends_with(".narinfo")) {
            std::istringstream lines{std::string(data)};
            for (std::string l; std::getline(lines, l);) {
                if (l.rfind("References: ", 0) != 0) continue;
                std::istringstream refs(l.substr(12));
                for (std::string ref; refs >> ref;) {
                    auto refKey = ref.substr(0, 32) + ".narinfo";
                    if (refKey != key && !inner_.exists(refKey)) early_.push_back(key + " before " + ref);
                }
            }
            held_.insert(key);
            mostHeld_ = std::max(mostHeld_, held_.size());
            changed_.notify_all();
            changed_.wait(lock, [&] { return !holding_ || let_.count(key); });
            held_.erase(key);
            let_.erase(key);
            if (refuse_.erase(key)) throw std::runtime_error("refused by the test: " + key);
        }
        lock.unlock();
        inner_.put(key, data, contentType);
    }

    // Holds every narinfo write from now on, until let go.
    void hold()
    {
        std::lock_guard lock(mutex_);
        holding_ = true;
    }
    void letAll()
    {
        std::lock_guard lock(mutex_);
        holding_ = false;
        heldCheck_.clear();
        changed_.notify_all();
    }
    // Holds the check of `key` (when it comes) until releaseCheck().
    void holdCheck(const std::string & key)
    {
        std::lock_guard lock(mutex_);
        heldCheck_ = key;
    }
    void releaseCheck()
    {
        std::lock_guard lock(mutex_);
        heldCheck_.clear();
        changed_.notify_all();
    }
    // Waits for a held check to be reached (it stays held until released).
    bool waitCheckWaiting(std::chrono::milliseconds timeout = std::chrono::seconds(20))
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return checkWaiting_; });
    }
    // Lets the next write of `key` go (held now or not yet), or fail.
    void let(const std::string & key, bool refuse = false)
    {
        std::lock_guard lock(mutex_);
        let_.insert(key);
        if (refuse) refuse_.insert(key);
        changed_.notify_all();
    }

    // Waits until the writes held are `pred`; false after a minute.
    template<typename Pred> bool waitHeld(Pred pred, std::chrono::milliseconds timeout = std::chrono::minutes(1))
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return pred(held_); });
    }

    // Holds the checks of `keys` until they are all under way at once.
    void gather(std::set<std::string> keys)
    {
        std::lock_guard lock(mutex_);
        gather_ = std::move(keys);
        gathered_ = timedOut_ = false;
    }
    bool gatherTimedOut()
    {
        std::lock_guard lock(mutex_);
        return timedOut_;
    }
    size_t mostChecking()
    {
        std::lock_guard lock(mutex_);
        return mostChecking_;
    }
    std::map<std::string, int> checks()
    {
        std::lock_guard lock(mutex_);
        return exists_;
    }

    std::map<std::string, int> puts()
    {
        std::lock_guard lock(mutex_);
        return puts_;
    }
    std::vector<std::string> early()
    {
        std::lock_guard lock(mutex_);
        return early_;
    }
    size_t mostHeld()
    {
        std::lock_guard lock(mutex_);
        return mostHeld_;
    }

private:
    BinaryCache & inner_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, int> puts_;
    std::map<std::string, int> exists_;
    std::set<std::string> checking_, gather_; // keys being checked; keys to check at once
    size_t mostChecking_ = 0;
    bool gathered_ = false, timedOut_ = false;
    std::vector<std::string> early_; // narinfos written before a reference's
    std::set<std::string> held_, let_, refuse_;
    bool holding_ = false;
    size_t mostHeld_ = 0;
    bool listing_ = false;
    size_t listings_ = 0;
    std::string heldCheck_; // a check held until released
    bool checkWaiting_ = false;
};

std::string narinfoKey(const std::string & path)
{
    return evolive::nix::hashPart(path) + ".narinfo";
}

// Waits (a minute at most) for the pusher to be in a state.
template<typename Pred> bool waitLoad(Pusher & pusher, Pred pred)
{
    for (int i = 0; i < 60000; ++i) {
        if (pred(pusher.load())) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

class ConcurrentPush : public ::testing::Test
{
protected:
    TempDir dir;
    std::string salt = freshSalt();
    std::unique_ptr<NixDaemon> daemon;
    std::unique_ptr<DirectoryCache> directory;
    std::unique_ptr<RecordingCache> cache;
    std::unique_ptr<DaemonPool> daemons;
    PresenceCache presence;
    std::unique_ptr<Pusher> pusher;
    // Pushes under way; after the pusher, so that they end before it does.
    std::list<std::future<PushSummary>> pushes;

    void SetUp() override
    {
        daemon = std::make_unique<NixDaemon>(dir.path());
        directory = std::make_unique<DirectoryCache>(dir.path() + "/cache");
        cache = std::make_unique<RecordingCache>(*directory);
        daemons = std::make_unique<DaemonPool>(daemon->socket(), 4);
    }

    // A failed assertion must not leave pushes held forever.
    void TearDown() override
    {
        if (cache) cache->letAll();
    }

    void makePusher(size_t uploads, size_t closures, size_t checks = 16, size_t listLimit = 200000)
    {
        pusher = std::make_unique<Pusher>(*daemons, *cache, presence, std::nullopt, "zstd", uploads, closures, checks,
                                          listLimit);
    }

    // Pushes `roots` on a thread of its own.
    std::future<PushSummary> & start(std::vector<std::string> roots, std::shared_ptr<std::latch> go = nullptr)
    {
        return pushes.emplace_back(std::async(std::launch::async, [this, roots, go] {
            if (go) go->arrive_and_wait();
            return pusher->push(roots);
        }));
    }

    // The .drv files of a Nix file of `{ salt }:` with `mk NAME DEPS` in scope.
    std::vector<std::string> instantiate(const std::string & body, const std::vector<std::string> & attrs = {})
    {
        auto file = dir.write("drvs.nix", "{ salt }: let mk = name: deps: derivation { inherit name salt deps; "
                                          "system = \"x86_64-linux\"; builder = \"/bin/sh\"; }; in " +
                                              body);
        std::vector<std::string> argv{"nix-instantiate", file, "--argstr", "salt", salt};
        for (auto & a : attrs) argv.insert(argv.end(), {"-A", a});
        auto r = runCommand(argv);
        if (r.exitCode != 0) throw std::runtime_error("nix-instantiate failed: " + r.err);
        std::vector<std::string> drvs;
        std::istringstream lines(r.out);
        for (std::string l; std::getline(lines, l);) drvs.push_back(l);
        return drvs;
    }

    std::set<std::string> requisites(const std::vector<std::string> & paths)
    {
        std::vector<std::string> argv{"nix-store", "--query", "--requisites"};
        argv.insert(argv.end(), paths.begin(), paths.end());
        auto r = runCommand(argv);
        EXPECT_EQ(r.exitCode, 0) << r.err;
        return lineSet(r.out);
    }
};

// The closure of `roots` as an unmodified `nix` reads it from `store`
// (empty when it cannot: the test's comparison then fails).
std::set<std::string> readByNix(const std::string & store, const std::vector<std::string> & roots)
{
    std::vector<std::string> args{"path-info", "--derivation", "--recursive", "--store", store};
    args.insert(args.end(), roots.begin(), roots.end());
    auto listed = runNix(args);
    EXPECT_EQ(listed.exitCode, 0) << listed.err;
    return lineSet(listed.out);
}

} // namespace

TEST_F(ConcurrentPush, OverlappingClosuresAreUploadedOnceEach)
{
    // Four layers of 30 derivations, each referencing three of the layer
    // below: the closures of any two roots share most of their paths.
    auto roots = instantiate("let layer = prev: level: builtins.genList (i: mk \"l${toString level}-${toString i}\" "
                             "(map (k: builtins.elemAt prev (k - k / 30 * 30)) (if prev == [] then [] else "
                             "[ i (i + 1) (i * 7 + 3) ]))) 30; "
                             "in layer (layer (layer (layer [] 0) 1) 2) 3");
    ASSERT_EQ(roots.size(), 30u);
    auto closure = requisites(roots);

    makePusher(4, 8);
    constexpr size_t threads = 8;
    auto go = std::make_shared<std::latch>(threads); // all at once
    for (size_t t = 0; t < threads; ++t) {
        std::vector<std::string> mine; // overlapping runs of 8 roots
        for (size_t k = 0; k < 8; ++k) mine.push_back(roots[(t * 4 + k) % roots.size()]);
        start(mine, go);
    }
    std::set<std::string> uploaded;
    size_t uploads = 0;
    for (auto & r : pushes) {
        auto summary = r.get();
        uploads += summary.uploaded.size();
        uploaded.insert(summary.uploaded.begin(), summary.uploaded.end());
    }
    EXPECT_EQ(uploads, uploaded.size()) << "a path was uploaded by two pushes";
    EXPECT_EQ(uploaded, closure);

    auto puts = cache->puts();
    size_t narinfos = 0;
    for (auto & [key, n] : puts) {
        EXPECT_EQ(n, 1) << key << " written " << n << " times";
        narinfos += key.ends_with(".narinfo");
    }
    EXPECT_EQ(narinfos, closure.size());
    EXPECT_EQ(cache->early(), std::vector<std::string>{});
    for (auto & path : closure) EXPECT_TRUE(directory->exists(narinfoKey(path))) << path;

    EXPECT_EQ(readByNix(directory->describe(), roots), closure);
    EXPECT_EQ(pusher->load().awaited, 0u);
}

// A push that needs a path another push is uploading waits for that
// upload instead of uploading it again, and its dependents wait with it.
TEST_F(ConcurrentPush, APushWaitsForThePathAnotherPushIsUploading)
{
    auto drvs = instantiate("rec { leaf = mk \"leaf\" []; mid = mk \"mid\" [ leaf ]; top = mk \"top\" [ mid ]; }",
                            {"leaf", "mid", "top"});
    auto & leaf = drvs[0], & mid = drvs[1], & top = drvs[2];
    makePusher(2, 2);
    cache->hold();
    auto & first = start({mid});
    ASSERT_TRUE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(leaf)); }));
    cache->let(narinfoKey(leaf));
    ASSERT_TRUE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(mid)); }));

    // mid's NAR is written, its narinfo not yet: the second push finds it
    // missing and must wait for the first one's upload.
    auto & second = start({top});
    ASSERT_TRUE(waitLoad(*pusher, [](const PusherLoad & l) { return l.awaited == 1; }));
    cache->letAll();

    auto a = first.get(), b = second.get();
    EXPECT_EQ(a.uploaded, (std::vector<std::string>{leaf, mid}));
    EXPECT_EQ(b.uploaded, std::vector<std::string>{top});
    EXPECT_EQ(std::set<std::string>(b.present.begin(), b.present.end()), (std::set<std::string>{leaf, mid}));
    EXPECT_EQ(cache->puts()[narinfoKey(mid)], 1);
    EXPECT_EQ(cache->early(), std::vector<std::string>{}); // top was written after mid
    EXPECT_EQ(pusher->load().awaited, 0u);
}

// The upload a push waited for fails: that push fails with the same error,
// nothing that references the path is written, and a later push tries the
// path again.
TEST_F(ConcurrentPush, AFailedUploadFailsThePushesWaitingForIt)
{
    auto drvs = instantiate("rec { mid = mk \"mid\" [ ]; top = mk \"top\" [ mid ]; }", {"mid", "top"});
    auto & mid = drvs[0], & top = drvs[1];
    makePusher(2, 2);
    cache->hold();
    auto & first = start({mid});
    ASSERT_TRUE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(mid)); }));
    auto & second = start({top});
    ASSERT_TRUE(waitLoad(*pusher, [](const PusherLoad & l) { return l.awaited == 1; }));
    cache->let(narinfoKey(mid), true);

    for (auto * push : {&first, &second}) {
        try {
            push->get();
            ADD_FAILURE() << "a push succeeded";
        } catch (std::runtime_error & e) {
            EXPECT_NE(std::string(e.what()).find("refused by the test"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(cache->puts().count(narinfoKey(top)), 0u);
    EXPECT_FALSE(directory->exists(narinfoKey(mid)));
    EXPECT_FALSE(presence.known(mid));
    EXPECT_EQ(pusher->load().awaited, 0u);

    cache->letAll();
    auto again = pusher->push({top});
    EXPECT_EQ(again.uploaded, (std::vector<std::string>{mid, top}));
}

// One push's closure walk checks the paths of a wide level at once (each in
// the cache and, missing, with the daemon): a root referencing eight
// leaves, whose checks are held until all eight are under way.
TEST_F(ConcurrentPush, UploadsStartWhileTheWalkGoesOn)
{
    // r references a leaf l and m, which references n: while the walk waits
    // on n's check, l (whose references are all known to be there: it has
    // none) is uploaded already; m and r wait for n.
    auto drvs = instantiate("rec { l = mk \"l\" [ ]; n = mk \"n\" [ ]; m = mk \"m\" [ n ]; r = mk \"r\" [ l m ]; }",
                            {"r", "l", "m", "n"});
    ASSERT_EQ(drvs.size(), 4u);
    makePusher(4, 1, 1); // one check at a time: the walk's order is fixed
    cache->holdCheck(narinfoKey(drvs[3]));
    cache->hold();
    auto & pushed = start({drvs[0]});
    EXPECT_TRUE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(drvs[1])); }, std::chrono::seconds(20)))
        << "no upload before the walk ended";
    // l may go up before the walk reaches n; n's check is held until the
    // end, so the walk cannot have ended while l is held.
    EXPECT_TRUE(cache->waitCheckWaiting());
    // Nothing that references n goes before it.
    EXPECT_FALSE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(drvs[2])) || held.count(narinfoKey(drvs[0])); },
                                 std::chrono::milliseconds(200)));
    cache->letAll();
    auto summary = pushed.get();
    EXPECT_EQ(summary.uploaded.size(), 4u);
    EXPECT_TRUE(cache->early().empty()) << cache->early().front();
    EXPECT_EQ(readByNix("file://" + dir.path() + "/cache", {drvs[0]}), requisites({drvs[0]}));
}

TEST_F(ConcurrentPush, TheWalkChecksManyPathsAtOnce)
{
    auto drvs = instantiate("let leaves = builtins.genList (i: mk \"leaf-${toString i}\" [ ]) 8; "
                            "in { inherit leaves; root = mk \"root\" leaves; }",
                            {"root", "leaves"});
    ASSERT_EQ(drvs.size(), 9u);
    auto root = drvs[0];
    std::set<std::string> leaves(drvs.begin() + 1, drvs.end()), keys;
    for (auto & leaf : leaves) keys.insert(narinfoKey(leaf));
    cache->gather(keys);
    makePusher(2, 1, 8);
    auto summary = pusher->push({root});
    EXPECT_FALSE(cache->gatherTimedOut()) << "the walk did not check the eight leaves at once";
    EXPECT_GE(cache->mostChecking(), 8u);
    ASSERT_EQ(summary.uploaded.size(), 9u);
    EXPECT_EQ(summary.uploaded.back(), root);
    EXPECT_EQ(std::set<std::string>(summary.uploaded.begin(), summary.uploaded.end() - 1), leaves);
    for (auto & [key, n] : cache->checks()) EXPECT_EQ(n, 1) << key << " checked " << n << " times";
    EXPECT_EQ(cache->early(), std::vector<std::string>{});

    // With one check at a time, the eight leaves are never checked at once.
    auto again = instantiate("let leaves = builtins.genList (i: mk \"again-${toString i}\" [ ]) 8; "
                             "in mk \"again\" leaves");
    std::set<std::string> againKeys;
    for (auto & p : requisites(again))
        if (p != again[0]) againKeys.insert(narinfoKey(p));
    ASSERT_EQ(againKeys.size(), 8u);
    cache->gather(againKeys);
    makePusher(2, 1, 1);
    EXPECT_EQ(pusher->push(again).uploaded.size(), 9u);
    EXPECT_TRUE(cache->gatherTimedOut());
}

// A diamond whose one side is in the cache already: the concurrent walk
// checks each path once, does not look past the paths in the cache (a path
// only they reference is never checked), and uploads only the missing
// paths, references first.
TEST_F(ConcurrentPush, TheWalkStopsAtPresentPathsOfADiamond)
{
    auto drvs = instantiate("rec { deep = mk \"deep\" [ ]; base = mk \"base\" [ ]; b = mk \"b\" [ base deep ]; "
                            "a = mk \"a\" [ base ]; c = mk \"c\" [ base ]; top = mk \"top\" [ a b c ]; }",
                            {"deep", "base", "b", "a", "c", "top"});
    auto & deep = drvs[0], & base = drvs[1], & b = drvs[2], & a = drvs[3], & c = drvs[4], & top = drvs[5];
    {
        // b's closure pushed before, by another pusher (nothing in `presence`).
        PresenceCache other;
        Pusher before(*daemons, *directory, other, std::nullopt, "zstd", 2, 1);
        EXPECT_EQ(before.push({b}).uploaded.size(), 3u);
    }
    makePusher(4, 1);
    auto summary = pusher->push({top});
    ASSERT_EQ(summary.uploaded.size(), 3u);
    EXPECT_EQ(std::set<std::string>(summary.uploaded.begin(), summary.uploaded.end() - 1),
              (std::set<std::string>{a, c}));
    EXPECT_EQ(summary.uploaded.back(), top);
    EXPECT_EQ(std::set<std::string>(summary.present.begin(), summary.present.end()), (std::set<std::string>{b, base}));
    EXPECT_EQ(summary.present.size(), 2u);
    auto checks = cache->checks();
    for (auto & path : {top, a, b, c, base}) EXPECT_EQ(checks[narinfoKey(path)], 1) << path;
    EXPECT_EQ(checks.count(narinfoKey(deep)), 0u) << "a reference of a present path was looked at";
    EXPECT_EQ(cache->early(), std::vector<std::string>{});
    for (auto & path : {top, a, c}) EXPECT_EQ(cache->puts()[narinfoKey(path)], 1) << path;
}

// Six one-path pushes at once into a cache that holds every narinfo write:
// the writes held at once are the pushes (or uploads) let run at once.
class ConcurrentPushCaps : public ConcurrentPush
{
protected:
    std::vector<std::string> alone;
    void SetUp() override
    {
        ConcurrentPush::SetUp();
        alone = instantiate("builtins.genList (i: mk \"alone-${toString i}\" [ ]) 6");
        ASSERT_EQ(alone.size(), 6u);
        cache->hold();
    }

    // No third write comes while two are held. Only the absence of an event
    // shows a cap, so this waits a while for the event that must not come.
    void expectNoThird()
    {
        EXPECT_FALSE(cache->waitHeld([](auto & held) { return held.size() > 2; }, std::chrono::milliseconds(500)))
            << "more than two writes at once";
    }
};

TEST_F(ConcurrentPushCaps, AtMostClosuresPushesRunAtOnceFirstComeFirstServed)
{
    makePusher(8, 2);
    // One at a time, so that their order is known.
    for (size_t i = 0; i < alone.size(); ++i) {
        start({alone[i]});
        if (i < 2)
            ASSERT_TRUE(cache->waitHeld([&](auto & held) { return held.count(narinfoKey(alone[i])); }));
        else
            ASSERT_TRUE(waitLoad(*pusher, [&](const PusherLoad & l) { return l.queuedPushes == i - 1; }));
    }
    expectNoThird();
    auto load = pusher->load();
    EXPECT_EQ(load.pushes, 2u);
    EXPECT_EQ(load.queuedPushes, 4u);

    // Each push that ends lets the one that waited longest in.
    for (size_t i = 2; i < alone.size(); ++i) {
        cache->let(narinfoKey(alone[i - 2]));
        ASSERT_TRUE(cache->waitHeld([&](auto & held) {
            return held == std::set<std::string>{narinfoKey(alone[i - 1]), narinfoKey(alone[i])};
        }));
    }
    cache->letAll();
    for (auto & r : pushes) EXPECT_EQ(r.get().uploaded.size(), 1u);
    EXPECT_EQ(cache->mostHeld(), 2u);
}

TEST_F(ConcurrentPushCaps, UploadsAreCappedAcrossPushes)
{
    makePusher(2, 6);
    for (auto & drv : alone) start({drv});
    ASSERT_TRUE(cache->waitHeld([](auto & held) { return held.size() == 2; }));
    expectNoThird();
    ASSERT_TRUE(waitLoad(*pusher, [](const PusherLoad & l) { return l.pushes == 6; }));
    EXPECT_EQ(pusher->load().uploads, 2u);
    cache->letAll();
    for (auto & r : pushes) EXPECT_EQ(r.get().uploaded.size(), 1u);
    EXPECT_EQ(cache->mostHeld(), 2u);
}

// With the cache listed once, the walk asks the cache about no path: what
// is not listed is missing. The whole closure goes up, in order, readable.
TEST_F(ConcurrentPush, AListingTakesThePlaceOfTheChecks)
{
    auto roots = instantiate("let layer = prev: level: builtins.genList (i: mk \"l${toString level}-${toString i}\" "
                             "(map (k: builtins.elemAt prev (k - k / 10 * 10)) (if prev == [] then [] else "
                             "[ i (i + 1) (i * 3 + 1) ]))) 10; "
                             "in layer (layer (layer [] 0) 1) 2");
    auto closure = requisites(roots);
    cache->allowListing();
    makePusher(4, 2);
    auto first = pusher->push({roots.begin(), roots.begin() + 5});
    auto second = pusher->push(roots); // the same Pusher: no second listing
    EXPECT_EQ(cache->listings(), 1u);
    EXPECT_EQ(cache->checks(), (std::map<std::string, int>{})) << "a path was checked in the cache";
    std::set<std::string> uploaded(first.uploaded.begin(), first.uploaded.end());
    uploaded.insert(second.uploaded.begin(), second.uploaded.end());
    EXPECT_EQ(uploaded.size(), first.uploaded.size() + second.uploaded.size()) << "a path was uploaded twice";
    EXPECT_EQ(uploaded, closure);
    // The second push stopped at the roots the first one uploaded.
    std::set<std::string> present(second.present.begin(), second.present.end());
    for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(present.count(roots[i])) << roots[i];
    for (auto & [key, n] : cache->puts()) EXPECT_EQ(n, 1) << key << " written " << n << " times";
    EXPECT_EQ(cache->early(), std::vector<std::string>{});

    EXPECT_EQ(readByNix(directory->describe(), roots), closure);
}

// A path another Pusher wrote before this one was made is in the listing:
// present, not uploaded again, and not checked.
TEST_F(ConcurrentPush, APathAlreadyInTheCacheIsFoundByTheListing)
{
    auto drvs = instantiate("rec { leaf = mk \"leaf\" []; mid = mk \"mid\" [ leaf ]; top = mk \"top\" [ mid ]; }",
                            {"leaf", "mid", "top"});
    auto & leaf = drvs[0], & mid = drvs[1], & top = drvs[2];
    cache->allowListing();
    makePusher(2, 1);
    EXPECT_EQ(pusher->push({mid}).uploaded, (std::vector<std::string>{leaf, mid}));

    PresenceCache fresh; // nothing remembered: only the listing knows
    Pusher other(*daemons, *cache, fresh, std::nullopt, "zstd", 2, 1);
    auto summary = other.push({top});
    EXPECT_EQ(summary.uploaded, std::vector<std::string>{top});
    EXPECT_EQ(summary.present, std::vector<std::string>{mid});
    EXPECT_EQ(cache->checks(), (std::map<std::string, int>{}));
    EXPECT_EQ(cache->puts()[narinfoKey(mid)], 1);
    EXPECT_EQ(cache->puts()[narinfoKey(leaf)], 1);
}

// No listing (the backend cannot list, or the cache holds more narinfos
// than the limit): each path is checked in the cache, as before.
TEST_F(ConcurrentPush, WithoutACompleteListingEachPathIsChecked)
{
    auto drvs = instantiate("rec { leaf = mk \"leaf\" []; mid = mk \"mid\" [ leaf ]; top = mk \"top\" [ mid ]; "
                            "side = mk \"side\" [ leaf ]; }",
                            {"leaf", "mid", "top", "side"});
    auto & leaf = drvs[0], & mid = drvs[1], & top = drvs[2], & side = drvs[3];
    makePusher(2, 1); // listing not allowed
    EXPECT_EQ(pusher->push({mid}).uploaded, (std::vector<std::string>{leaf, mid}));
    EXPECT_EQ(cache->checks(), (std::map<std::string, int>{{narinfoKey(leaf), 1}, {narinfoKey(mid), 1}}));

    // Two narinfos in the cache, a limit of one: too many to list.
    cache->allowListing();
    PresenceCache fresh;
    Pusher limited(*daemons, *cache, fresh, std::nullopt, "zstd", 2, 1, 16, 1);
    auto summary = limited.push({top, side});
    EXPECT_EQ(std::set<std::string>(summary.uploaded.begin(), summary.uploaded.end()),
              (std::set<std::string>{top, side}));
    EXPECT_EQ(std::set<std::string>(summary.present.begin(), summary.present.end()),
              (std::set<std::string>{mid, leaf}));
    auto checks = cache->checks();
    EXPECT_EQ(checks[narinfoKey(top)], 1);
    EXPECT_EQ(checks[narinfoKey(side)], 1);
    EXPECT_EQ(checks[narinfoKey(mid)], 2);
    EXPECT_EQ(checks[narinfoKey(leaf)], 2); // side's reference, checked again by the new Pusher
    EXPECT_EQ(cache->early(), std::vector<std::string>{});
}

# Two versions of one jobset for the comparison's tests: from version "1"
# to "2" every job moves into one category of docs/diff.md.
{ salt, version }:
let
  v2 = version == "2";
  mk = name: system: attrs: derivation ({ inherit name system salt; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; } // attrs);
  same = mk "same" "x86_64-linux" { };
  changed = mk "changed" "x86_64-linux" { v = version; };
in
{
  inherit same changed;
  # A fixed-output derivation: another .drv in version 2, the same output path.
  source = derivation {
    name = "source"; system = "x86_64-linux"; builder = "/bin/sh"; inherit salt;
    args = [ "-c" (if v2 then "printf '' > $out # fetched another way" else "printf '' > $out") ];
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  };
  breaks = if v2 then throw "breaks in version 2" else mk "breaks" "x86_64-linux" { };
  repaired = if v2 then mk "repaired" "x86_64-linux" { } else throw "broken in version 1";
  stillBroken = throw "broken in both";
  aggregate = mk "aggregate" "x86_64-linux" { _hydraAggregate = true; constituents = [ same changed ]; };
  armChanged = mk "changed-arm" "aarch64-linux" { v = version; };
  armSame = mk "same-arm" "aarch64-linux" { };
} // (if v2 then {
  added = mk "added" "x86_64-linux" { };
  sameAlias = same;
  darwinAdded = mk "added-darwin" "x86_64-darwin" { };
} else {
  removed = mk "removed" "x86_64-linux" { };
})

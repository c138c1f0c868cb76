# One attribute per kind of failure evolive-eval-jobs must turn into an error
# line while the rest of the run goes on.
{ salt }:
let
  mk = name: deps: derivation {
    inherit name salt deps;
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo > $out" ];
  };
  # Each derivation depends on the previous one: forcing the last .drv path
  # recurses through all of them.
  chain = n: builtins.foldl' (prev: i: mk "chain-${toString i}" [ prev ]) (mk "chain-0" [ ])
    (builtins.genList (i: i + 1) n);
in
{
  ok = mk "ok" [ ];
  throws = throw "deliberate failure";
  asserts = assert 1 == 2; mk "never" [ ];
  aborts = abort "deliberate abort";
  missing = { }.nothing;
  typeError = mk 3 [ ];
  infinite = let x = x; in x;
  overflow = let f = n: 1 + f (n + 1); in f 0;
  deepChain = chain 20000;
  brokenDep = mk "broken-dep" [ (throw "dependency is broken") ];
  notADerivation = 42;
  aFunction = x: x;
  aList = [ 1 ];
  aString = "s";
  hiddenSet = { inner = mk "hidden" [ ]; };
  visibleSet = { recurseForDerivations = true; inner = mk "visible" [ ]; };
  after = mk "after" [ ];
}

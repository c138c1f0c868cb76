# Jobs that take a while each (a busy loop per job), for tests that must
# act while an evaluation runs: join it, queue behind it, cancel it.
{ salt, n ? "20", spin ? "2000000" }:
let
  busy = i: builtins.foldl' (a: b: a + b) i (builtins.genList (x: x) (builtins.fromJSON spin));
  job = i: derivation {
    name = "slow-${toString i}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    inherit salt;
    busy = toString (busy i);
  };
in
builtins.listToAttrs (builtins.genList (i: { name = "job${toString i}"; value = job i; }) (builtins.fromJSON n))

# Few jobs with a large `meta` each (about 10 MB of stream in all): more
# than socket buffers hold, for the test of a client that never reads.
{ salt, n ? "300" }:
let
  text = builtins.concatStringsSep "" (builtins.genList (x: "0123456789") 3000);
  job = i: derivation {
    name = "big-${toString i}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    inherit salt;
  } // { meta.description = text; };
in
builtins.listToAttrs (builtins.genList (i: { name = "job${toString i}"; value = job i; }) (builtins.fromJSON n))

with import ./config.nix;
{ dep }:
{
  uses-dep = mkDerivation {
    name = "uses-dep";
    script = "cp -r ${dep} $out";
    depId = toString (dep.outPath);
    depVersion = dep.version or "none";
  };
}

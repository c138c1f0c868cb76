with import ./config.nix;
{ dep }:
{
  uses-dep = mkDerivation {
    name = "uses-dep";
    script = "cp -r ${dep} $out";
    depVersion = dep.version or "none";
    depOutput = dep.outputName or "none";
    depType = dep.inputType;
    depPath = "${dep}";
  };
}

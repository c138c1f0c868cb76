with import ./config.nix;
{ deps }:
{
  uses-eval = mkDerivation {
    name = "uses-eval";
    depPath = "${deps.dep}";
  };
}

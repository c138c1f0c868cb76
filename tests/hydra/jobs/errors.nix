with import ./config.nix;
{
  good = mkDerivation { name = "good"; };
  throws = throw "this job fails to evaluate";
  missing = (mkDerivation { name = "missing"; }).noSuchAttribute;
}

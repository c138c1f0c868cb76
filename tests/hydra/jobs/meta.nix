with import ./config.nix;
{
  full-of-meta = mkDerivation {
    name = "full-of-meta";
    meta = {
      description = "This is the description of the job.";
      license = [ { shortName = "MIT"; } "BSD" ];
      homepage = "https://example.com/";
      maintainers = [ "alice@example.com" { email = "bob@not.found"; } ];
      schedulingPriority = 42;
      isChannel = true;
      maxSilent = 120;
      timeout = 900;
    };
  };
  no-meta = mkDerivation { name = "no-meta"; };
  empty-meta = mkDerivation {
    name = "empty-meta";
    meta = {
      description = "";
      license = { shortName = "GPL-3.0"; };
      maintainers = [ ];
      schedulingPriority = 0;
      isChannel = false;
      maxSilent = "not a number";
    };
  };
  multiple-outputs = mkDerivation {
    name = "multiple-outputs";
    outputs = [ "out" "dev" "bin" ];
    script = "mkdir $out $dev $bin";
  };
}

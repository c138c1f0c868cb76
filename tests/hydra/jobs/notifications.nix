# Copied to default.nix; variable-job changes whenever this file does.
with import ./config.nix;
{
  stable-job-queued = mkDerivation { name = "stable-job-queued"; script = "echo queued > $out"; };
  stable-job-passing = mkDerivation { name = "stable-job-passing"; script = "echo passing > $out"; };
  stable-job-failing = mkDerivation { name = "stable-job-failing"; script = "echo failing > $out"; };
  variable-job = mkDerivation {
    name = "variable-job";
    script = "echo ${builtins.hashString "sha256" (builtins.readFile ./default.nix)} > $out";
  };
}

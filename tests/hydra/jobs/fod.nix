# A fixed-output derivation: changing its script changes its .drv but not
# its output path (what makes Hydra repoint a reused build).
with import ./config.nix;
{
  fod = mkDerivation {
    name = "fod-empty-dir";
    script = "mkdir $out # @variant@";
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = "0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5";
  };
  plain = mkDerivation { name = "plain"; };
}

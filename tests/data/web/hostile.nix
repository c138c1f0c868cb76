# A jobset whose names, errors, meta, system and input value carry HTML and
# script: the status page must show all of it as text. Whatever would run
# sets window.__pwned, or adds an element with the id "pwned".
{ salt, note ? "" }:
let
  mk = name: system: derivation { inherit name system salt note; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
in
{
  "<img src=x onerror=\"window.__pwned=1\">" = mk "hostile-attr" "x86_64-linux" // {
    meta.description = "<b id=\"pwned\">bold</b><script>window.__pwned=3</script>";
  };
  "<script>window.__pwned=2</script>" = throw "<script>window.__pwned=4</script><img id=\"pwned\" src=x onerror=\"window.__pwned=5\">";
  weird = mk "weird" "<svg id=pwned onload=window.__pwned=6>";
  plain = mk "plain" "x86_64-linux";
}

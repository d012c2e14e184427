# Sourced by the measurement scripts: `example_bin PACKAGE EXAMPLE` builds a workspace package's
# example in release and prints the path of its binary, in whichever target directory cargo uses.
example_bin() {
    local package=$1 example=$2 target
    cargo build --release --quiet -p "$package" --example "$example"
    target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    echo "$target/release/examples/$example"
}

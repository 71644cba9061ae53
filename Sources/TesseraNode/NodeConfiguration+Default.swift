extension NodeConfiguration {
    /// The configuration `tesserad` runs without `--config`: one portal on
    /// 127.0.0.1:3260, one target, LUN 0 of 1 GiB in 512-byte blocks on a
    /// sparse file, no authentication. Kept as TOML so there is one parser
    /// path; `Targets/default.toml` holds the same text.
    public static let defaultTOML = """
        # Tessera built-in default: one target, one 1 GiB LUN, no authentication.
        [node]
        data_dir = "./tessera-data"
        log_level = "info"

        [[portal]]
        listen = "127.0.0.1:3260"
        group = 1

        [[target]]
        name = "iqn.2026-11.dev.tessera:default"
        alias = "tessera-default"

        [[target.lun]]
        id = 0
        size = "1GiB"
        block_size = 512
        backing = "file"
        path = "lun0.img"
        thin = true

        """

    /// ``defaultTOML``, parsed.
    public static func builtInDefault() throws(NodeConfigurationError) -> NodeConfiguration {
        try parse(defaultTOML, source: "built-in default")
    }
}

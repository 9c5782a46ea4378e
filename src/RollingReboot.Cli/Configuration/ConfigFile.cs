using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RollingReboot.Cli.Commands;

namespace RollingReboot.Cli.Configuration;

/// <summary>
/// <c>~/.config/rollreboot/config.json</c> (under <c>$XDG_CONFIG_HOME</c> when set) or <c>--config FILE</c>: defaults for
/// the run's options, for every cluster and per cluster:
/// <code>{"defaults": {"threads": 8, "hostTimeout": "30m"}, "clusters": {"CLUSTER-1": {"maxHostsDown": 2}}}</code>
/// Applied before the command line is parsed for good: each setting becomes <c>--option value</c> when that option was
/// not given on the command line and no environment variable covering it is set. So the order is: command line, then
/// environment, then the cluster's section, then <c>defaults</c>, then the built-in defaults. The whole file is checked
/// first; a problem is one line naming the file and the key (exit 2, nothing touched). Secrets are never read from it.
/// Over 400 lines on purpose: the table of keys and the checks of each kind of value are one schema, read together.
/// </summary>
public static class ConfigFile
{
    public const string OptionName = "--config";
    public const string FileName = "config.json";

    /// <summary>
    /// Every setting the file takes and the option it stands for. Extension point: an option added to the run
    /// (hooks, notifications, --halt...) gets a line here, e.g. <c>new("preHostHook", "--pre-host-hook", ConfigKind.Text)</c>;
    /// a test checks that each line names an option that exists.
    /// </summary>
    internal static readonly IReadOnlyList<ConfigKey> Keys =
    [
        new("zone", "--zone", ConfigKind.Text),
        new("format", "--format", ConfigKind.Choice) { Choices = ["text", "markdown", "json"] },
        new("threads", "--threads", ConfigKind.Integer) { Min = 1, Max = 64 },
        new("maxHostsDown", "--max-hosts-down", ConfigKind.Integer) { Min = 1, AllowAuto = true },
        new("hosts", "--hosts", ConfigKind.List),
        new("ignoreHosts", "--ignore-hosts", ConfigKind.List),
        new("onlyNeedingReboot", "--only-needing-reboot", ConfigKind.Flag),
        new("returnVms", "--return-vms", ConfigKind.Flag),
        new("hostTimeout", "--host-timeout", ConfigKind.Duration),
        new("hostDelay", "--host-delay", ConfigKind.Duration),
        new("windowEnd", "--window-end", ConfigKind.WindowEnd),
        new("window", "--window", ConfigKind.Window),
        new("waitForWindow", "--wait-for-window", ConfigKind.Flag),
        new("maxWindowWait", "--max-window-wait", ConfigKind.Duration),
        new("prometheusUrl", "--prometheus-url", ConfigKind.Url) { Environment = [EnvNames.PrometheusUrl] },
        new("alertFilter", "--alert-filter", ConfigKind.Regex),
        new("alertFilterMatchOnly", "--alert-filter-match-only", ConfigKind.Flag),
        new("alertFiringOnly", "--alert-firing-only", ConfigKind.Flag),
        new("pauseAfter", "--pause-after", ConfigKind.Integer) { Min = 1 },
        new("assumeRebootSeconds", "--assume-reboot-seconds", ConfigKind.Number),
        new("assumeLinkMbps", "--assume-link-mbps", ConfigKind.Number),
        new("migrationNetwork", "--migration-network", ConfigKind.Text),
        new("compress", "--compress", ConfigKind.Flag),
        new("metricsFile", "--metrics-file", ConfigKind.Text),
        new("ignoreRunningTasks", "--ignore-running-tasks", ConfigKind.Flag),
        new("verbose", "--verbose", ConfigKind.Flag),
        new("sshAcceptNew", "--ssh-accept-new", ConfigKind.Flag),
        new("cmkProfile", "--cmk-profile", ConfigKind.Text) { Environment = ["ROLLREBOOT_CLOUDSTACK_PROFILE"] },
        new("xapiUrl", "--xapi-url", ConfigKind.Text) { Environment = [EnvNames.XapiUrl] },
        new("xapiUser", "--xapi-user", ConfigKind.Text) { Environment = [EnvNames.XapiUser] },
        new("xapiPasswordFile", "--xapi-password-file", ConfigKind.Text) { Environment = [EnvNames.XapiPasswordFile, EnvNames.XapiPassword] },
        new("xapiCertSha256", "--xapi-cert-sha256", ConfigKind.Repeated) { Environment = [EnvNames.XapiCertSha256] },
        new("xapiTrustNew", "--xapi-trust-new", ConfigKind.Flag),
        new("parallelClusters", "--parallel-clusters", ConfigKind.Integer) { Min = 1 },
        new("preHostHook", "--pre-host-hook", ConfigKind.Text),
        new("postHostHook", "--post-host-hook", ConfigKind.Text),
        new("preHostCommand", "--pre-host-command", ConfigKind.Text),
        new("postHostCommand", "--post-host-command", ConfigKind.Text),
        new("hookTimeout", "--hook-timeout", ConfigKind.Duration),
        new("needsRebootCommand", "--needs-reboot-command", ConfigKind.Text),
        new("blockerCommand", "--blocker-command", ConfigKind.Text),
        new("blockerTimeout", "--blocker-timeout", ConfigKind.Duration),
        new("halt", "--halt", ConfigKind.Flag),
        new("powerOnTimeout", "--power-on-timeout", ConfigKind.Duration),
        new("powerOnDelay", "--power-on-delay", ConfigKind.Text),
        new("retries", "--retries", ConfigKind.Integer) { Min = 0 },
        new("retryDelay", "--retry-delay", ConfigKind.Duration),
        new("maxFailedHosts", "--max-failed-hosts", ConfigKind.Integer) { Min = 0 },
        new("shutdownPinnedVms", "--shutdown-pinned-vms", ConfigKind.Flag),
        new("shutdownTimeout", "--shutdown-timeout", ConfigKind.Duration),
        new("applyUpdates", "--apply-updates", ConfigKind.Flag),
        new("applyVmGuidances", "--apply-vm-guidances", ConfigKind.Flag),
        new("updateTimeout", "--update-timeout", ConfigKind.Duration),
        new("notifyTemplate", "--notify-template", ConfigKind.Text),
        new("mailTo", "--mail-to", ConfigKind.List),
        new("mailCommand", "--mail-command", ConfigKind.Text),
        new("mailFrom", "--mail-from", ConfigKind.Text),
        new("noLive", "--no-live", ConfigKind.Flag),
    ];

    /// <summary>Options that must be typed each time, never defaulted by a file.</summary>
    private static readonly Dictionary<string, string> s_commandLineOnly = new(StringComparer.Ordinal)
    {
        ["exec"] = "rollreboot changes nothing unless --exec is given on the command line",
        ["breakLock"] = "--break-lock is for one run you know is dead; give it on the command line",
        ["insecure"] = "turning certificate checks off stays a visible choice: give --insecure on the command line",
        ["output"] = "give --output on the command line",
        ["report"] = "give --report on the command line",
        ["reportJson"] = "give --report-json on the command line",
        ["config"] = "a config file cannot name another",
    };

    /// <summary>Adds <c>--config FILE</c> to every command that takes <c>--clustername</c> (the plan/run, resume, restore).</summary>
    public static void AddTo(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var command in Walk(root).Where(c => c.Options.Any(o => o.Name == "--clustername") && c.Options.All(o => o.Name != OptionName)))
        {
            command.Options.Add(new Option<string?>(OptionName)
            {
                Description = "Defaults for these options from this JSON file (default ~/.config/rollreboot/config.json): command line, then environment, then the cluster's section, then \"defaults\"",
                HelpName = "FILE",
            });
        }
    }

    public static string DefaultPath(CliEnvironment env) => Path.Combine(env.ConfigDirectory(), FileName);

    /// <summary>
    /// The parse of <paramref name="args"/> with the file's settings added for the options the command line left out;
    /// <paramref name="parse"/> itself when the command takes no config, asks for help or version, or there is no file.
    /// </summary>
    /// <exception cref="UserFacingException">The file is missing (named with --config), unreadable or invalid.</exception>
    public static ParseResult Apply(RootCommand root, ParseResult parse, IReadOnlyList<string> args, CliEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(env);
        var command = parse.CommandResult.Command;
        var configOption = command.Options.FirstOrDefault(o => o.Name == OptionName);
        if (configOption is null || !ReferenceEquals(parse.Action, command.Action))
        {
            return parse;
        }

        var explicitPath = Given(parse, configOption) ? parse.GetResult(configOption)!.GetValueOrDefault<string?>() : null;
        var path = explicitPath ?? DefaultPath(env);
        if (explicitPath is null && !File.Exists(path))
        {
            return parse;
        }

        var config = Load(path);
        // Read as tokens, whatever the option's type: one cluster picks its section.
        var clusterOption = command.Options.First(o => o.Name == "--clustername");
        var clusters = (parse.GetResult(clusterOption)?.Tokens ?? [])
            .SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct(StringComparer.Ordinal).ToList();
        if (clusters.Count > 1 && clusters.Any(config.Clusters.ContainsKey))
        {
            env.Error.WriteLine($"rollreboot: {path}: the sections of clusters {string.Join(", ", clusters.Where(config.Clusters.ContainsKey))} are not applied when several clusters are named; only \"defaults\" is");
        }

        var cluster = clusters.Count == 1 ? clusters[0] : null;
        var (extra, sources) = Arguments(config, cluster, command, option => Given(parse, option), env);
        if (extra.Count == 0)
        {
            return parse;
        }

        env.Error.WriteLine($"rollreboot: using {path} ({string.Join(", ", sources)}): {string.Join(' ', extra)}");
        var list = args.ToList();
        var end = list.IndexOf("--");
        list.InsertRange(end < 0 ? list.Count : end, extra);
        return root.Parse(list);
    }

    /// <summary>
    /// The tokens the file adds: settings of the cluster's section over those of <c>defaults</c>, for options the command
    /// has and the command line did not give, unless an environment variable covering them is set.
    /// </summary>
    internal static (List<string> Tokens, List<string> Sources) Arguments(Config config, string? cluster, Command command, Func<Option, bool> given, CliEnvironment env)
    {
        var merged = new Dictionary<string, ConfigValue>(config.Defaults, StringComparer.Ordinal);
        var sources = new List<string>();
        if (config.Defaults.Count > 0)
        {
            sources.Add("defaults");
        }

        if (cluster is not null && config.Clusters.TryGetValue(cluster, out var section))
        {
            sources.Add("cluster " + cluster);
            foreach (var (key, value) in section)
            {
                merged[key] = value;
            }
        }

        var tokens = new List<string>();
        foreach (var key in Keys.Where(k => merged.ContainsKey(k.Key)))
        {
            var option = command.Options.FirstOrDefault(o => o.Name == key.Option || o.Aliases.Contains(key.Option));
            if (option is null || given(option) || key.Environment.Any(v => env.Get(v) is not null))
            {
                continue;
            }

            tokens.AddRange(merged[key.Key].Tokens);
        }

        return (tokens, sources);
    }

    /// <summary>Reads and checks the whole file, every section, whatever cluster the run is for.</summary>
    /// <exception cref="UserFacingException">One line naming the file and, when there is one, the key.</exception>
    public static Config Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserFacingException($"config file {path}: cannot be read ({e.Message})");
        }

        return Parse(text, path);
    }

    public static Config Parse(string text, string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new UserFacingException($"config file {path}: not valid JSON (line {e.LineNumber + 1}): {e.Message.Split(" LineNumber:", 2)[0]}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Problem(path, null, "must be a JSON object with \"defaults\" and/or \"clusters\"");
            }

            var defaults = new Dictionary<string, ConfigValue>(StringComparer.Ordinal);
            var clusters = new Dictionary<string, IReadOnlyDictionary<string, ConfigValue>>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "defaults":
                        defaults = Section(property.Value, "defaults", path);
                        break;
                    case "clusters":
                        if (property.Value.ValueKind != JsonValueKind.Object)
                        {
                            throw Problem(path, "clusters", "must be an object of cluster name to settings");
                        }

                        foreach (var c in property.Value.EnumerateObject())
                        {
                            clusters[c.Name] = Section(c.Value, $"clusters.{c.Name}", path);
                        }

                        break;
                    default:
                        var hint = Keys.Any(k => k.Key == property.Name) ? $"; put it under \"defaults\" or \"clusters\": {{\"NAME\": ...}}" : "; the file has \"defaults\" and \"clusters\"";
                        CheckNotSecret(property.Name, property.Name, path);
                        throw Problem(path, property.Name, "unknown key" + hint);
                }
            }

            return new Config(path, defaults, clusters);
        }
    }

    private static Dictionary<string, ConfigValue> Section(JsonElement section, string where, string path)
    {
        if (section.ValueKind != JsonValueKind.Object)
        {
            throw Problem(path, where, "must be an object of settings");
        }

        var values = new Dictionary<string, ConfigValue>(StringComparer.Ordinal);
        foreach (var property in section.EnumerateObject())
        {
            var at = $"{where}.{property.Name}";
            CheckNotSecret(property.Name, at, path);
            if (s_commandLineOnly.TryGetValue(property.Name, out var why))
            {
                throw Problem(path, at, "cannot be set in a config file: " + why);
            }

            var key = Keys.FirstOrDefault(k => k.Key == property.Name)
                ?? throw Problem(path, at, "unknown key" + Suggest(property.Name));
            values[key.Key] = Read(key, property.Value, at, path);
        }

        return values;
    }

    private static ConfigValue Read(ConfigKey key, JsonElement value, string at, string path)
    {
        var option = key.Option;
        switch (key.Kind)
        {
            case ConfigKind.Flag:
                return value.ValueKind switch
                {
                    JsonValueKind.True => new ConfigValue([option]),
                    JsonValueKind.False => new ConfigValue([]),
                    _ => throw Problem(path, at, $"must be true or false, not {value.GetRawText()}"),
                };
            case ConfigKind.Integer when key.AllowAuto && value.ValueKind == JsonValueKind.String && value.GetString() == "auto":
                return new ConfigValue([option, "auto"]);
            case ConfigKind.Integer:
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n))
                {
                    throw Problem(path, at, $"must be a whole number, not {value.GetRawText()}");
                }

                if (n < key.Min || n > key.Max)
                {
                    throw Problem(path, at, key.Max == int.MaxValue ? $"must be at least {key.Min}, not {n}" : $"must be from {key.Min} to {key.Max}, not {n}");
                }

                return new ConfigValue([option, n.ToString(CultureInfo.InvariantCulture)]);
            case ConfigKind.Number:
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var d) || d <= 0)
                {
                    throw Problem(path, at, $"must be a positive number, not {value.GetRawText()}");
                }

                return new ConfigValue([option, d.ToString("R", CultureInfo.InvariantCulture)]);
            case ConfigKind.Duration:
                var duration = Text(value, at, path, "a duration such as \"30m\", \"900s\" or \"1h\"");
                try
                {
                    _ = TimeArguments.ParseDuration(duration, option);
                }
                catch (UserFacingException)
                {
                    throw Problem(path, at, $"\"{duration}\" is not a duration; use e.g. \"900s\", \"30m\" or \"1h\"");
                }

                return new ConfigValue([option, duration]);
            case ConfigKind.WindowEnd:
                var end = Text(value, at, path, "a time (\"04:00\", \"2026-11-23T04:00\") or a duration (\"90m\")");
                try
                {
                    // Only the form is checked here; whether it is already past is for the run to say.
                    _ = TimeArguments.ParseWindowEnd(end, EarliestClock.Instance);
                }
                catch (UserFacingException)
                {
                    throw Problem(path, at, $"\"{end}\" is neither a time (\"04:00\", \"2026-11-23T04:00\") nor a duration (\"90m\", \"2h\")");
                }

                return new ConfigValue([option, end]);
            case ConfigKind.Window:
                var window = Text(value, at, path, "a window such as \"Sat,Sun 01:00-05:00 Europe/Amsterdam\"");
                if (!Core.Time.MaintenanceWindow.TryParse(window, TimeZoneInfo.Utc, out _, out var why))
                {
                    throw Problem(path, at, $"\"{window}\" {why}");
                }

                return new ConfigValue([option, window]);
            case ConfigKind.Url:
                var url = Text(value, at, path, "an http(s) URL");
                if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
                {
                    throw Problem(path, at, "must be an http(s) URL, e.g. \"http://prometheus:9090\"");
                }

                return parsed.UserInfo.Length > 0
                    ? throw Problem(path, at, $"holds credentials, and secrets are never read from the config file: put the URL in {EnvNames.PrometheusUrl}")
                    : new ConfigValue([option, url]);
            case ConfigKind.Regex:
                var pattern = Text(value, at, path, "a regular expression");
                try
                {
                    _ = new System.Text.RegularExpressions.Regex(pattern, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
                }
                catch (ArgumentException e)
                {
                    throw Problem(path, at, $"\"{pattern}\" is not a regular expression ({e.Message})");
                }

                return new ConfigValue([option, pattern]);
            case ConfigKind.Choice:
                var choice = Text(value, at, path, "one of " + string.Join(", ", key.Choices));
                return key.Choices.Contains(choice, StringComparer.Ordinal)
                    ? new ConfigValue([option, choice])
                    : throw Problem(path, at, $"must be one of {string.Join(", ", key.Choices)}, not \"{choice}\"");
            case ConfigKind.List:
                return new ConfigValue([option, string.Join(',', Strings(value, at, path))]);
            case ConfigKind.Repeated:
                return new ConfigValue(Strings(value, at, path).SelectMany(v => new[] { option, v }).ToList());
            default:
                return new ConfigValue([option, Text(value, at, path, "a string")]);
        }
    }

    private static string Text(JsonElement value, string at, string path, string what) =>
        value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s && s.Trim().Length > 0
            ? s.Trim()
            : throw Problem(path, at, $"must be {what}, not {value.GetRawText()}");

    /// <summary>A list: a JSON array of strings, or one string with commas.</summary>
    private static List<string> Strings(JsonElement value, string at, string path)
    {
        var items = value.ValueKind switch
        {
            JsonValueKind.String => [value.GetString()!],
            JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => value.EnumerateArray().Select(e => e.GetString()!).ToList(),
            _ => throw Problem(path, at, $"must be a list of strings (or one string, comma-separated), not {value.GetRawText()}"),
        };
        var list = items.SelectMany(i => i.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        return list.Count > 0 ? list : throw Problem(path, at, "must not be empty");
    }

    /// <summary>Secrets stay in the environment, owner-only files or a CloudMonkey profile, never in this file.</summary>
    private static void CheckNotSecret(string name, string at, string path)
    {
        var lower = name.ToLowerInvariant();
        if (name == "xapiPasswordFile")
        {
            return;
        }

        var where = lower.Contains("passphrase", StringComparison.Ordinal) ? "ROLLREBOOT_SSH_KEY_PASSPHRASE"
            : lower.Contains("password", StringComparison.Ordinal) ? "ROLLREBOOT_XAPI_PASSWORD_FILE (an owner-only file; or \"xapiPasswordFile\" here) or ROLLREBOOT_XAPI_PASSWORD"
            : lower.Contains("secret", StringComparison.Ordinal) || lower.Contains("apikey", StringComparison.Ordinal) || lower is "key" or "token" || lower.EndsWith("token", StringComparison.Ordinal)
                ? "ROLLREBOOT_CLOUDSTACK_SECRET_KEY_FILE (an owner-only file) and ROLLREBOOT_CLOUDSTACK_API_KEY, or a CloudMonkey profile (\"cmkProfile\" here)"
            : null;
        if (where is not null)
        {
            throw Problem(path, at, $"is a secret, and secrets are never read from the config file: use {where}");
        }
    }

    private static string Suggest(string name)
    {
        var plain = name.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal);
        var near = Keys.FirstOrDefault(k => k.Key.Equals(plain, StringComparison.OrdinalIgnoreCase) || k.Option == name || k.Option == "--" + name);
        return near is not null
            ? $"; did you mean \"{near.Key}\"?"
            : "; known: " + string.Join(", ", Keys.Select(k => k.Key));
    }

    private static UserFacingException Problem(string path, string? key, string what) =>
        new(key is null ? $"config file {path}: {what}" : $"config file {path}: \"{key}\" {what}");

    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    private static IEnumerable<Command> Walk(Command command) => new[] { command }.Concat(command.Subcommands.SelectMany(Walk));

    /// <summary>A clock at the earliest time, so that checking a window end's form never finds it past.</summary>
    private sealed class EarliestClock : TimeProvider
    {
        public static readonly EarliestClock Instance = new();

        public override DateTimeOffset GetUtcNow() => new(1970, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }
}

public enum ConfigKind
{
    Text,
    Choice,
    Integer,
    Number,
    Flag,
    Duration,
    WindowEnd,

    /// <summary>A recurring window: [DAYS] HH:MM-HH:MM [ZONE].</summary>
    Window,

    /// <summary>An http(s) URL without credentials.</summary>
    Url,

    Regex,

    /// <summary>Names joined with commas into one value (--hosts a,b).</summary>
    List,

    /// <summary>The option repeated per value (--xapi-cert-sha256 A --xapi-cert-sha256 B).</summary>
    Repeated,
}

/// <summary>A setting of the file: its key, the option it defaults, and the environment variables that win over it.</summary>
public sealed record ConfigKey(string Key, string Option, ConfigKind Kind)
{
    public IReadOnlyList<string> Environment { get; init; } = [];

    public IReadOnlyList<string> Choices { get; init; } = [];

    public int Min { get; init; } = int.MinValue;

    public int Max { get; init; } = int.MaxValue;

    /// <summary>The string "auto" is accepted besides a number.</summary>
    public bool AllowAuto { get; init; }
}

/// <summary>A setting's command-line tokens (empty for a flag set to false).</summary>
public sealed record ConfigValue(IReadOnlyList<string> Tokens);

/// <summary>A checked config file.</summary>
public sealed record Config(string Path, IReadOnlyDictionary<string, ConfigValue> Defaults, IReadOnlyDictionary<string, IReadOnlyDictionary<string, ConfigValue>> Clusters);

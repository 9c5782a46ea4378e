using System.CommandLine;
using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run;
using RollingReboot.Core.Time;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// The run's options read from a parse and checked, each failure one line naming the option (exit 2).
/// An option the command does not have reads as its type's default (System.CommandLine's <c>GetValue</c>), so
/// one method serves every command that has some of its options: resume has no --return-vms, evacuate no --halt.
/// </summary>
internal static class RunOptionsBinder
{
    public const string ClusterRequired = "--clustername is required: name the CloudStack cluster (or pool) to reboot; see --help";

    public static string ValidFormat(string? value)
    {
        var format = value ?? "text";
        return format is "text" or "markdown" or "json" ? format : throw new UserFacingException($"--format {format} is not known; use text, markdown or json");
    }

    public static TimeSpan HostTimeout(ParseResult parse, RunOptionsDefinitions o) =>
        TimeArguments.ParseDuration(parse.GetValue(o.HostTimeout) ?? "20m", "--host-timeout");

    /// <summary>--notify, else ROLLREBOOT_NOTIFY_URL (which keeps a tokened URL off the command line), and --notify-template.</summary>
    public static NotifySettings? Notify(ParseResult parse, RunOptionsDefinitions o, CliEnvironment env)
    {
        var url = (parse.GetValue(o.Notify) ?? env.Get(EnvNames.NotifyUrl)) is { } text ? Adapters.WebhookNotifier.Parse(text) : null;
        var templateFile = parse.GetValue(o.NotifyTemplate);
        if (templateFile is not null && url is null)
        {
            throw new UserFacingException($"--notify-template needs --notify URL (or {EnvNames.NotifyUrl}): the template is the body posted there");
        }

        return url is null ? null : new NotifySettings(url, templateFile is null ? null : Adapters.NotifyTemplate.Load(templateFile.FullName));
    }

    /// <summary>--mail-to, --mail-command, --mail-from: the end-of-run summary mail, or null.</summary>
    public static Adapters.MailSettings? Mail(ParseResult parse, RunOptionsDefinitions o, CliEnvironment env) =>
        Adapters.MailSettings.Bind(Split(parse.GetValue(o.MailTo)), parse.GetValue(o.MailCommand), parse.GetValue(o.MailFrom), env);

    public static PlanOptions BuildPlanOptions(ParseResult parse, RunOptionsDefinitions o)
    {
        var threads = ValidThreads(parse.GetValue(o.Threads));
        var maxDown = ValidMaxHostsDown(parse.GetValue(o.MaxHostsDown));
        var model = new MigrationModel();
        if (parse.GetValue(o.AssumeLinkMbps) is { } link)
        {
            if (link <= 0)
            {
                throw new UserFacingException("--assume-link-mbps must be positive");
            }

            model = model with { HostLinkMBps = link };
        }

        var reboot = parse.GetValue(o.AssumeRebootSeconds) ?? 300;
        if (reboot <= 0)
        {
            throw new UserFacingException("--assume-reboot-seconds must be positive");
        }

        return new PlanOptions
        {
            Threads = threads,
            MaxHostsDown = maxDown,
            IncludeHosts = Split(parse.GetValue(o.Hosts)),
            IgnoreHosts = Split(parse.GetValue(o.IgnoreHosts)),
            OnlyNeedingReboot = parse.GetValue(o.OnlyNeedingReboot),
            ReturnVms = parse.GetValue(o.ReturnVms),
            ShutdownPinnedVms = parse.GetValue(o.ShutdownPinnedVms),
            ApplyUpdates = parse.GetValue(o.ApplyUpdates),
            ApplyVmGuidances = ApplyVmGuidances(parse, o),
            MigrationModel = model,
            RebootSeconds = reboot,
            LinkAssumed = parse.GetValue(o.AssumeLinkMbps) is not null,
            MigrationNetwork = MigrationNetwork(parse, o),
            Compress = parse.GetValue(o.Compress),
            IgnoreRunningTasks = parse.GetValue(o.IgnoreRunningTasks),
        };
    }

    private static bool ApplyVmGuidances(ParseResult parse, RunOptionsDefinitions o) =>
        parse.GetValue(o.ApplyVmGuidances) && !parse.GetValue(o.ApplyUpdates)
            ? throw new UserFacingException("--apply-vm-guidances needs --apply-updates (the guidances it applies are what the updates leave)")
            : parse.GetValue(o.ApplyVmGuidances);

    private static string? MigrationNetwork(ParseResult parse, RunOptionsDefinitions o) => parse.GetValue(o.MigrationNetwork) switch
    {
        null => null,
        { } n when string.IsNullOrWhiteSpace(n) => throw new UserFacingException("--migration-network must name a network (its name label or uuid; xe network-list)"),
        { } n => n,
    };

    /// <summary>Evacuate and return: the one host of --host, moved with --threads migrations at a time.</summary>
    public static PlanOptions OneHostPlanOptions(ParseResult parse, RunOptionsDefinitions o) =>
        new()
        {
            Threads = ValidThreads(parse.GetValue(o.Threads)),
            IncludeHosts = [parse.GetValue(o.Host)!],
            MigrationNetwork = MigrationNetwork(parse, o),
            Compress = parse.GetValue(o.Compress),
        };

    public static HookOptions BuildHooks(ParseResult parse, RunOptionsDefinitions o) => new()
    {
        PreHostHook = NonEmpty(parse.GetValue(o.PreHostHook), "--pre-host-hook"),
        PostHostHook = NonEmpty(parse.GetValue(o.PostHostHook), "--post-host-hook"),
        PreHostCommand = NonEmpty(parse.GetValue(o.PreHostCommand), "--pre-host-command"),
        PostHostCommand = NonEmpty(parse.GetValue(o.PostHostCommand), "--post-host-command"),
        NeedsRebootCommand = NonEmpty(parse.GetValue(o.NeedsRebootCommand), "--needs-reboot-command"),
        BlockerCommand = NonEmpty(parse.GetValue(o.BlockerCommand), "--blocker-command"),
        HookTimeout = TimeArguments.ParseDuration(parse.GetValue(o.HookTimeout) ?? "30m", "--hook-timeout"),
        BlockerTimeout = TimeArguments.ParseDuration(parse.GetValue(o.BlockerTimeout) ?? "30m", "--blocker-timeout"),
    };

    /// <summary>
    /// The run's behaviour. Read only once the journal is open, as before the split: a dry run ignores the pacing
    /// options, and the window's "now" is the run's start.
    /// </summary>
    public static RunOptions BuildRunOptions(ParseResult parse, RunOptionsDefinitions o, CliEnvironment env, TimeProvider clock, RunInputs inputs) => new()
    {
        HostTimeout = inputs.HostTimeout,
        BreakLock = parse.GetValue(o.BreakLock),
        Operator = env.Get("USER") ?? env.Get("LOGNAME") ?? "unknown",
        Machine = Environment.MachineName,
        ProcessId = Environment.ProcessId,
        Plan = inputs.Plan,
        UseSshProof = inputs.UseSshProof,
        PauseAfter = ValidPauseAfter(parse.GetValue(o.PauseAfter)),
        WindowEnd = parse.GetValue(o.WindowEnd) is { } w ? TimeArguments.ParseWindowEnd(w, clock) : null,
        HostDelay = parse.GetValue(o.HostDelay) is { } d ? TimeArguments.ParseDuration(d, "--host-delay") : TimeSpan.Zero,
        Hooks = inputs.Hooks,
        Window = inputs.Gates.Window,
        WaitForWindow = inputs.Gates.WaitForWindow,
        EvacuateOnly = inputs.EvacuateOnly,
        Halt = parse.GetValue(o.Halt),
        PowerOnTimeout = TimeArguments.ParseDuration(parse.GetValue(o.PowerOnTimeout) ?? "4h", "--power-on-timeout"),
        PowerOnDelay = ParsePowerOnDelay(parse.GetValue(o.PowerOnDelay) ?? "0s"),
        HostRetries = InRange(parse.GetValue(o.Retries), 0, 10, "--retries"),
        RetryDelay = TimeArguments.ParseDuration(parse.GetValue(o.RetryDelay) ?? "1m", "--retry-delay"),
        MaxFailedHosts = InRange(parse.GetValue(o.MaxFailedHosts), 0, 1000, "--max-failed-hosts"),
        ShutdownTimeout = TimeArguments.ParseDuration(parse.GetValue(o.ShutdownTimeout) ?? "5m", "--shutdown-timeout"),
        UpdateTimeout = TimeArguments.ParseDuration(parse.GetValue(o.UpdateTimeout) ?? "60m", "--update-timeout"),
    };

    private static int InRange(int value, int min, int max, string option) =>
        value >= min && value <= max ? value : throw new UserFacingException($"{option} {value} is out of range: give a whole number from {min} to {max}");

    /// <summary>--power-on-delay: a duration (0 = as soon as XAPI has the host down) or "manual" (never: someone powers it on).</summary>
    private static TimeSpan? ParsePowerOnDelay(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        return t switch
        {
            "manual" => null,
            "0" or "0s" or "0m" or "0h" => TimeSpan.Zero,
            _ when t.Length > 0 && (char.IsDigit(t[0]) || t[0] == '.') => TimeArguments.ParseDuration(t, "--power-on-delay"),
            _ => throw new UserFacingException($"--power-on-delay '{text}' is neither a duration (0s, 90s, 10m, 1h) nor 'manual'"),
        };
    }

    /// <summary>--window, --wait-for-window and the alert gate, checked before anything is asked of the pool.</summary>
    /// <param name="localZone">The run clock's zone: a window that names none is in it.</param>
    public static RunGates BuildGates(ParseResult parse, RunOptionsDefinitions o, CliEnvironment env, TimeZoneInfo localZone)
    {
        MaintenanceWindow? window = null;
        if (parse.GetValue(o.Window) is { } text)
        {
            if (!MaintenanceWindow.TryParse(text, localZone, out window, out var error))
            {
                throw new UserFacingException($"--window '{text}': {error}");
            }
        }

        TimeSpan? wait = null;
        if (parse.GetValue(o.WaitForWindow))
        {
            wait = window is null
                ? throw new UserFacingException("--wait-for-window needs --window: the window whose next opening to wait for")
                : TimeArguments.ParseDuration(parse.GetValue(o.MaxWindowWait) ?? "24h", "--max-window-wait");
        }

        return new RunGates(window, wait, AlertSettings(parse, o, env));
    }

    /// <summary>
    /// --prometheus-url (or ROLLREBOOT_PROMETHEUS_URL) with the filter options. Credentials in the URL only from the
    /// environment: a command line is seen by every user of the machine (ps) and kept in shell histories.
    /// </summary>
    private static AlertSettings? AlertSettings(ParseResult parse, RunOptionsDefinitions o, CliEnvironment env)
    {
        var given = parse.GetValue(o.PrometheusUrl);
        var text = given ?? env.Get(EnvNames.PrometheusUrl);
        var filterText = parse.GetValue(o.AlertFilter);
        if (text is null)
        {
            return filterText is not null || parse.GetValue(o.AlertFilterMatchOnly) || parse.GetValue(o.AlertFiringOnly)
                ? throw new UserFacingException($"--alert-filter, --alert-filter-match-only and --alert-firing-only need --prometheus-url (or {EnvNames.PrometheusUrl}): the Prometheus whose alerts to read")
                : null;
        }

        var source = given is null ? EnvNames.PrometheusUrl : "--prometheus-url";
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.Host.Length == 0)
        {
            throw new UserFacingException($"{source} must be an http(s) URL of a Prometheus server, e.g. http://prometheus:9090");
        }

        if (given is not null && url.UserInfo.Length > 0)
        {
            throw new UserFacingException($"--prometheus-url holds credentials, which never go on the command line: put the URL in {EnvNames.PrometheusUrl} instead");
        }

        System.Text.RegularExpressions.Regex? filter = null;
        if (filterText is not null)
        {
            try
            {
                filter = new System.Text.RegularExpressions.Regex(filterText, System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new UserFacingException($"--alert-filter '{filterText}' is not a regular expression ({e.Message})");
            }
        }
        else if (parse.GetValue(o.AlertFilterMatchOnly))
        {
            throw new UserFacingException("--alert-filter-match-only needs --alert-filter: the alert names that alone count");
        }

        return new AlertSettings(url, new AlertOptions { Filter = filter, FilterMatchOnly = parse.GetValue(o.AlertFilterMatchOnly), FiringOnly = parse.GetValue(o.AlertFiringOnly) });
    }

    /// <summary>The plan's options against the pool as read: every named host in it, room for --max-hosts-down.</summary>
    public static void CheckAgainstPool(PlanOptions plan, PoolSnapshot pool)
    {
        if (plan.MaxHostsDown >= pool.Hosts.Count)
        {
            throw new UserFacingException($"--max-hosts-down {plan.MaxHostsDown} must be smaller than the pool's {pool.Hosts.Count} hosts");
        }

        foreach (var name in plan.IncludeHosts.Concat(plan.IgnoreHosts))
        {
            if (pool.FindHost(name) is null)
            {
                throw new UserFacingException($"host '{name}' is not in pool {pool.Name} (hosts: {string.Join(", ", pool.Hosts.Select(h => h.Name).Order(StringComparer.Ordinal))})");
            }
        }
    }

    public static int ValidThreads(int threads) =>
        threads is < 1 or > 64 ? throw new UserFacingException($"--threads {threads} must be between 1 and 64") : threads;

    public static int? ValidPauseAfter(int? n) =>
        n is < 1 ? throw new UserFacingException($"--pause-after {n} must be at least 1") : n;

    public static int ValidParallelClusters(int parallel) =>
        parallel < 1 ? throw new UserFacingException($"--parallel-clusters {parallel} must be at least 1") : parallel;

    public static string? NonEmpty(string? value, string option) =>
        value is null ? null : value.Trim().Length > 0 ? value : throw new UserFacingException($"{option} is empty; give the command to run");

    /// <summary>Comma-separated or repeated values, trimmed, each once.</summary>
    public static List<string> Split(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct().ToList();

    private static int ValidMaxHostsDown(string? value)
    {
        var text = (value ?? "1").Trim();
        if (text.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            return PlanOptions.AutoMaxHostsDown;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var maxDown) && maxDown >= 1
            ? maxDown
            : throw new UserFacingException($"--max-hosts-down {text} must be a whole number of at least 1, or 'auto'");
    }
}

/// <summary>Where notifications go (--notify) and, with --notify-template, what their body is.</summary>
internal sealed record NotifySettings(Uri Url, Adapters.NotifyTemplate? Template);

/// <summary>What a command settled before the run's options are read.</summary>
internal sealed record RunInputs(TimeSpan HostTimeout, PlanOptions Plan, HookOptions Hooks, bool UseSshProof, bool EvacuateOnly)
{
    public RunGates Gates { get; init; } = RunGates.None;
}

/// <summary>Where the alert gate reads (the URL may hold credentials: never logged) and which alerts count.</summary>
internal sealed record AlertSettings(Uri Url, AlertOptions Options);

/// <summary>The window and the alert gate of a run.</summary>
internal sealed record RunGates(MaintenanceWindow? Window, TimeSpan? WaitForWindow, AlertSettings? Alerts)
{
    public static RunGates None { get; } = new(null, null, null);
}

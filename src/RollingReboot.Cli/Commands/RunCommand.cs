using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using RollingReboot.CloudStack;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Run.State;
using RollingReboot.Core.Run.Steps;
using RollingReboot.Ssh;
using RollingReboot.Xapi;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// <c>rollreboot --clustername NAME</c>: the plan (dry run, the default); with <c>--exec</c>, the run.
/// </summary>
internal sealed class RunCommand
{
    private CliEnvironment _env;
    private readonly XapiOptions _xapi = new();

    private readonly Option<string[]> _cluster = new("--clustername") { Description = "CloudStack cluster (or, without CloudStack, the pool's name) to reboot; several (comma-separated or repeated) form a fleet, each with its own lock and journal", AllowMultipleArgumentsPerToken = true };
    private readonly Option<bool> _allClusters = new("--all-clusters") { Description = "Every XenServer cluster of --zone, as a fleet" };
    private readonly Option<int> _parallelClusters = new("--parallel-clusters") { Description = "Fleet: how many clusters run at the same time (each pool still one host at a time unless --max-hosts-down)", DefaultValueFactory = _ => 1 };
    private readonly Option<string?> _zone = new("--zone") { Description = "CloudStack zone, when the cluster name is not unique" };
    private readonly Option<bool> _exec = new("--exec") { Description = "Do it. Without --exec rollreboot only prints the plan and changes nothing" };
    private readonly Option<string> _format = new("--format") { Description = "Plan output: text, markdown or json", DefaultValueFactory = _ => "text" };
    private readonly Option<FileInfo?> _output = new("--output") { Description = "Write the plan to this file instead of stdout" };
    private readonly Option<FileInfo?> _report = new("--report") { Description = "Write the run's report (Markdown, with a Mermaid gantt of what happened) to this file" };
    private readonly Option<FileInfo?> _reportJson = new("--report-json") { Description = "Write the run's report as JSON to this file" };
    private readonly Option<int> _threads = new("--threads") { Description = "Parallel migrations per step", DefaultValueFactory = _ => 5 };
    private readonly Option<string> _maxHostsDown = new("--max-hosts-down") { Description = "Hosts evacuated and rebooted together when capacity allows (the master always alone); 'auto' picks the number whose plan is estimated fastest", DefaultValueFactory = _ => "1" };
    private readonly Option<string[]> _hosts = new("--hosts") { Description = "Only these hosts (names or uuids; comma-separated or repeated)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<string[]> _ignoreHosts = new("--ignore-hosts") { Description = "Leave these hosts alone (names or uuids)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<bool> _onlyNeeding = new("--only-needing-reboot") { Description = "Only hosts with a pending reboot (reboot_host guidance or updates requiring reboot)" };
    private readonly Option<bool> _returnVms = new("--return-vms") { Description = "At the end, migrate VMs back to their original hosts" };
    private readonly Option<string> _hostTimeout = new("--host-timeout") { Description = "How long a host may take to come back (e.g. 20m, 1h, 900s)", DefaultValueFactory = _ => "20m" };
    private readonly Option<bool> _breakLock = new("--break-lock") { Description = "Break a stale lock left by a dead run (its owner is shown first)" };
    private readonly Option<string?> _cmkProfile = new("--cmk-profile") { Description = "CloudMonkey profile from ~/.cmk/config for the CloudStack URL and keys" };
    private readonly Option<bool> _sshAcceptNew = new("--ssh-accept-new") { Description = "Accept and record unknown SSH host keys on first contact (changed keys are always refused)" };
    private readonly Option<double?> _assumeReboot = new("--assume-reboot-seconds") { Description = "Host reboot time used in the estimate (default 300)" };
    private readonly Option<double?> _assumeLink = new("--assume-link-mbps") { Description = "Host link bandwidth for migrations in MB/s used in the estimate (default 250)" };
    private readonly Option<bool> _verbose = new("--verbose") { Description = "More detail in the log" };
    private readonly Option<int?> _pauseAfter = new("--pause-after") { Description = "Canary: stop safely after this many hosts (restored, exit 4); continue with 'rollreboot resume'" };
    private readonly Option<string?> _windowEnd = new("--window-end") { Description = "End of the maintenance window: a time of day (04:00, its next occurrence), a date and time (2026-11-23T04:00, local unless it has an offset) or a duration from now (90m, 2h); no host is started that would end after it" };
    private readonly Option<string?> _hostDelay = new("--host-delay") { Description = "Wait this long between hosts (e.g. 5m)" };
    private readonly Option<string?> _preHostHook = new("--pre-host-hook") { Description = "Local command run when a host is empty and disabled, before its reboot (env ROLLREBOOT_HOST, _HOST_ADDRESS, _POOL, _PHASE...); exit 70 skips the host, other failures stop the run safely" };
    private readonly Option<string?> _postHostHook = new("--post-host-hook") { Description = "Local command run when a host is back and enabled; a failure stops the run before the next host" };
    private readonly Option<string?> _preHostCommand = new("--pre-host-command") { Description = "Command run on the host over SSH when it is empty, before its reboot (after --pre-host-hook); exit 70 skips the host" };
    private readonly Option<string?> _postHostCommand = new("--post-host-command") { Description = "Command run on the host over SSH when it is back (after --post-host-hook)" };
    private readonly Option<string> _hookTimeout = new("--hook-timeout") { Description = "Time limit for each hook, remote command and check (wall clock)", DefaultValueFactory = _ => "30m" };
    private readonly Option<string?> _needsRebootCommand = new("--needs-reboot-command") { Description = "Command run on each host over SSH before planning: exit 0 = needs a reboot, any other exit = leave it alone (e.g. 'test -e /var/run/reboot-required')" };
    private readonly Option<string?> _blockerCommand = new("--blocker-command") { Description = "Local check (e.g. a monitoring query) that blocks the run while it exits non-zero: before the start (exit 3) and before each host (waits)" };
    private readonly Option<string> _blockerTimeout = new("--blocker-timeout") { Description = "How long to wait between hosts for --blocker-command to pass before stopping safely (resumable)", DefaultValueFactory = _ => "30m" };
    private readonly Option<bool> _halt = new("--halt") { Description = "Shut each evacuated host down instead of rebooting it, for hardware work; wait for someone to power it on, then prove the new boot as usual" };
    private readonly Option<string> _powerOnTimeout = new("--power-on-timeout") { Description = "With --halt: how long to wait for a host to be powered on and back (capped by --window-end)", DefaultValueFactory = _ => "4h" };
    private readonly Option<string?> _notify = new("--notify") { Description = "POST JSON (Slack-compatible 'text') to this URL on start, each host, failure and finish; ROLLREBOOT_NOTIFY_URL keeps a tokened URL off the command line" };

    private readonly Option<string> _host = new("--host") { Description = "The host to empty (evacuate) or bring back (return): name or uuid", Required = true };

    private readonly RunMode _mode;

    /// <summary>An option's value, or its type's default when this command does not have the option.</summary>
    private static T? Get<T>(ParseResult parse, Option<T> option) =>
        parse.CommandResult.Command.Options.Contains(option) ? parse.GetValue(option) : default;

    private RunCommand(CliEnvironment env, RunMode mode)
    {
        _env = env;
        _mode = mode;
    }

    internal enum RunMode
    {
        PlanOrRun,
        Resume,
        Restore,
        Evacuate,
        Return,
    }

    public static void AddTo(RootCommand root, CliEnvironment env)
    {
        Configure(root, new RunCommand(env, RunMode.PlanOrRun));
        var resume = new Command("resume", "Continue a run that stopped (crash, kill -9, host timeout) from its journal; hosts already rebooted in it are not rebooted again.");
        Configure(resume, new RunCommand(env, RunMode.Resume));
        root.Subcommands.Add(resume);
        var restore = new Command("restore", "Undo what a stopped run changed (HA, CloudStack state, disabled hosts, the lock) without continuing it.");
        Configure(restore, new RunCommand(env, RunMode.Restore));
        root.Subcommands.Add(restore);
        var evacuate = new Command("evacuate", "Empty one host for maintenance: disable it and live-migrate its VMs to the other hosts (dry run unless --exec). It stays disabled until 'rollreboot return'.");
        Configure(evacuate, new RunCommand(env, RunMode.Evacuate));
        root.Subcommands.Add(evacuate);
        var back = new Command("return", "Bring a host emptied by 'rollreboot evacuate' back into service: enable it and migrate its VMs back to it (dry run unless --exec).");
        Configure(back, new RunCommand(env, RunMode.Return));
        root.Subcommands.Add(back);
    }

    private static void Configure(Command command, RunCommand c)
    {
        Option[] options = c._mode == RunMode.Evacuate
            ? [c._cluster, c._zone, c._host, c._exec, c._format, c._output, c._report, c._reportJson, c._threads, c._cmkProfile, c._verbose, c._notify]
            : c._mode == RunMode.Return
            ? [c._cluster, c._zone, c._host, c._exec, c._report, c._reportJson, c._threads, c._cmkProfile, c._verbose, c._notify]
            : c._mode == RunMode.PlanOrRun
            ? [c._cluster, c._zone, c._allClusters, c._parallelClusters, c._exec, c._format, c._output, c._report, c._reportJson, c._threads, c._maxHostsDown, c._hosts, c._ignoreHosts, c._onlyNeeding, c._returnVms, c._hostTimeout, c._breakLock, c._cmkProfile, c._sshAcceptNew, c._assumeReboot, c._assumeLink, c._verbose, c._pauseAfter, c._windowEnd, c._hostDelay, .. c.HookOptions]
            : c._mode == RunMode.Resume
                ? [c._cluster, c._zone, c._report, c._reportJson, c._threads, c._maxHostsDown, c._hosts, c._ignoreHosts, c._onlyNeeding, c._hostTimeout, c._cmkProfile, c._sshAcceptNew, c._verbose, c._pauseAfter, c._windowEnd, c._hostDelay, .. c.HookOptions]
                : [c._cluster, c._zone, c._report, c._reportJson, c._hostTimeout, c._cmkProfile, c._verbose];
        foreach (var o in options)
        {
            command.Options.Add(o);
        }

        c._xapi.AddTo(command);
        command.SetAction(async (parse, ct) => await c.ExecuteAsync(parse, ct));
    }

    private Option[] HookOptions => [_preHostHook, _postHostHook, _preHostCommand, _postHostCommand, _hookTimeout, _needsRebootCommand, _blockerCommand, _blockerTimeout, _halt, _powerOnTimeout, _notify];

    private HookOptions BuildHooks(ParseResult parse) => new()
    {
        PreHostHook = NonEmpty(Get(parse, _preHostHook), "--pre-host-hook"),
        PostHostHook = NonEmpty(Get(parse, _postHostHook), "--post-host-hook"),
        PreHostCommand = NonEmpty(Get(parse, _preHostCommand), "--pre-host-command"),
        PostHostCommand = NonEmpty(Get(parse, _postHostCommand), "--post-host-command"),
        NeedsRebootCommand = NonEmpty(Get(parse, _needsRebootCommand), "--needs-reboot-command"),
        BlockerCommand = NonEmpty(Get(parse, _blockerCommand), "--blocker-command"),
        HookTimeout = TimeArguments.ParseDuration(Get(parse, _hookTimeout) ?? "30m", "--hook-timeout"),
        BlockerTimeout = TimeArguments.ParseDuration(Get(parse, _blockerTimeout) ?? "30m", "--blocker-timeout"),
    };

    private static string? NonEmpty(string? value, string option) =>
        value is null ? null : value.Trim().Length > 0 ? value : throw new UserFacingException($"{option} is empty; give the command to run");

    private static bool NeedsRemote(HookOptions h) => h.PreHostCommand is not null || h.PostHostCommand is not null || h.NeedsRebootCommand is not null;

    private static bool NeedsLocal(HookOptions h) => h.PreHostHook is not null || h.PostHostHook is not null || h.BlockerCommand is not null;

    private async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        if (_xapi.NothingConfigured(parse, _env) && _mode == RunMode.PlanOrRun)
        {
            // No pool configured at all: the embedded lab is the default, announced loudly, never silently.
            await using var lab = await EmbeddedLab.StartAsync(_env, cancellationToken);
            var saved = _env;
            _env = lab.Environment;
            try
            {
                return await RunConfiguredAsync(parse, cancellationToken, lab.Label);
            }
            finally
            {
                _env = saved;
            }
        }

        return await RunConfiguredAsync(parse, cancellationToken, null);
    }

    private async Task<int> RunConfiguredAsync(ParseResult parse, CancellationToken cancellationToken, string? labLabel)
    {
        var names = Split(Get(parse, _cluster));
        var all = Get(parse, _allClusters);
        if (names.Count == 0 && !all)
        {
            throw new UserFacingException("--clustername is required: name the CloudStack cluster (or pool) to reboot; see --help");
        }

        if (names.Count == 1 && !all)
        {
            return await RunClusterAsync(parse, names[0], null, cancellationToken, labLabel);
        }

        if (_mode != RunMode.PlanOrRun)
        {
            throw new UserFacingException($"'rollreboot {_mode.ToString().ToLowerInvariant()}' works on one cluster: give a single --clustername");
        }

        return await RunFleetAsync(parse, names, all, cancellationToken, labLabel);
    }

    /// <summary>
    /// Several clusters in one invocation: one after another, or K at a time. Each has its own pool
    /// connection (found through the addresses CloudStack lists for its hosts), lock, journal and log;
    /// after a cluster stops (exit 4, 5 or 130) no further cluster is started. One report for all.
    /// </summary>
    private async Task<int> RunFleetAsync(ParseResult parse, List<string> names, bool all, CancellationToken cancellationToken, string? labLabel)
    {
        var parallel = Get(parse, _parallelClusters);
        if (parallel < 1)
        {
            throw new UserFacingException($"--parallel-clusters {parallel} must be at least 1");
        }

        var clock = _env.CreateClock();
        using var cloudClient = CreateCloudStack(parse, clock)
            ?? throw new UserFacingException("a fleet (several --clustername, --all-clusters) needs CloudStack settings: CloudStack says where each cluster's pool is");
        var zone = Get(parse, _zone);
        if (all)
        {
            if (zone is null)
            {
                throw new UserFacingException("--all-clusters needs --zone: the zone whose XenServer clusters to reboot");
            }

            var found = (await cloudClient.ListClustersAsync(zone, cancellationToken))
                .Where(c => c.HypervisorType.Equals("XenServer", StringComparison.OrdinalIgnoreCase)).Select(c => c.Name).Order(StringComparer.Ordinal).ToList();
            if (found.Count == 0)
            {
                throw new UserFacingException($"CloudStack has no XenServer cluster in zone {zone}");
            }

            names = [.. names.Concat(found).Distinct(StringComparer.Ordinal)];
        }

        var fleet = new FleetContext(names);
        await _env.Error.WriteLineAsync($"rollreboot: fleet of {names.Count} cluster(s): {string.Join(", ", names)}; {(parallel > 1 ? $"{parallel} at a time" : "one after another")}");
        using var gate = new SemaphoreSlim(parallel);
        var tasks = names.Select(async name =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                if (fleet.StopStarting)
                {
                    fleet.Record(name, null, "not started: an earlier cluster stopped");
                    return;
                }

                int code;
                try
                {
                    code = await RunClusterAsync(parse, name, fleet, cancellationToken, labLabel);
                }
                catch (UserFacingException e)
                {
                    await _env.Error.WriteLineAsync($"rollreboot: {name}: {e.Message}");
                    code = e.ExitCode;
                }

                fleet.Record(name, code, null);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
        return await fleet.WriteAsync(_env, Get(parse, _exec), Get(parse, _format) ?? "text", Get(parse, _output), Get(parse, _report), Get(parse, _reportJson));
    }

    private async Task<int> RunClusterAsync(ParseResult parse, string clusterName, FleetContext? fleet, CancellationToken cancellationToken, string? labLabel)
    {
        var format = Get(parse, _format) ?? "text";
        if (format is not ("text" or "markdown" or "json"))
        {
            throw new UserFacingException($"--format {format} is not known; use text, markdown or json");
        }

        var planOptions = _mode switch
        {
            RunMode.Restore => new PlanOptions(),
            RunMode.Evacuate or RunMode.Return => new PlanOptions { Threads = ValidThreads(Get(parse, _threads)), IncludeHosts = [parse.GetValue(_host)!] },
            _ => BuildPlanOptions(parse),
        };
        var hooks = _mode is RunMode.Restore or RunMode.Evacuate or RunMode.Return ? new HookOptions() : BuildHooks(parse);
        var notifyText = _mode == RunMode.Restore ? null : Get(parse, _notify) ?? _env.Get(EnvNames.NotifyUrl);
        var notifyUrl = notifyText is null ? null : Adapters.WebhookNotifier.Parse(notifyText);
        var hostTimeout = TimeArguments.ParseDuration(Get(parse, _hostTimeout) ?? "20m", "--host-timeout");
        var exec = _mode is RunMode.Resume or RunMode.Restore || Get(parse, _exec);
        var clock = _env.CreateClock();
        var runId = clock.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6];
        var stateDir = _env.StateDirectory();
        var logFile = exec ? Path.Combine(stateDir, "logs", $"run-{runId}.clef") : null;
        using var logger = (Serilog.Core.Logger)Logging.Create(_env, logFile, clock, Get(parse, _verbose), fleet is null ? null : clusterName);
        var log = new SerilogRunLog(logger);

        var settings = _xapi.Resolve(parse, _env);
        using var cloudClient = CreateCloudStack(parse, clock);
        ClusterBinding? cloud = null;
        try
        {
            if (cloudClient is not null)
            {
                cloud = new ClusterBinding(cloudClient, await FindClusterAsync(cloudClient, clusterName, Get(parse, _zone), cancellationToken));
                if (fleet is not null)
                {
                    settings = await FleetContext.PoolAddressAsync(settings, cloudClient, cloud.Cluster, cancellationToken);
                }
            }
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(CloudStackErrors.Describe(e));
        }

        await using var pool = new XapiPoolConnection(Connections.CreateXapiClient(settings, _env, clock));
        try
        {

            var poolSnapshot = _mode is RunMode.PlanOrRun or RunMode.Evacuate or RunMode.Return
                ? await pool.ReadAsync(cancellationToken)
                : await ReadWhenReachableAsync(pool, clock, hostTimeout, cancellationToken);
            if (cloud is null && !poolSnapshot.Name.Equals(clusterName, StringComparison.Ordinal))
            {
                throw new UserFacingException($"the pool at {settings.Url.Host} is named '{poolSnapshot.Name}', not '{clusterName}'; without CloudStack settings --clustername must name the pool");
            }

            if (planOptions.MaxHostsDown >= poolSnapshot.Hosts.Count)
            {
                throw new UserFacingException($"--max-hosts-down {planOptions.MaxHostsDown} must be smaller than the pool's {poolSnapshot.Hosts.Count} hosts");
            }

            foreach (var name in planOptions.IncludeHosts.Concat(planOptions.IgnoreHosts))
            {
                if (poolSnapshot.FindHost(name) is null)
                {
                    throw new UserFacingException($"host '{name}' is not in pool {poolSnapshot.Name} (hosts: {string.Join(", ", poolSnapshot.Hosts.Select(h => h.Name).Order(StringComparer.Ordinal))})");
                }
            }

            IRemoteShell? remote = null;
            if (NeedsRemote(hooks))
            {
                remote = CreateProbe(parse) as IRemoteShell
                    ?? throw new UserFacingException($"--pre-host-command, --post-host-command and --needs-reboot-command run over SSH, which is off ({EnvNames.Ssh}=off); configure SSH or drop them");
            }

            var local = NeedsLocal(hooks) ? new Adapters.LocalCommandRunner() : null;
            var commandsForPreflight = hooks.BlockerCommand is not null || hooks.NeedsRebootCommand is not null
                ? new PreflightCommands(new HostCommands(hooks, local, remote, log), clusterName, runId)
                : null;
            string? targetHost = null;
            if (_mode is RunMode.Evacuate or RunMode.Return)
            {
                var h = poolSnapshot.FindHost(planOptions.IncludeHosts[0])!;
                targetHost = h.Uuid;
                var marker = poolSnapshot.OtherConfig.GetValueOrDefault(Evacuation.MarkerKey(h.Uuid));
                if (_mode == RunMode.Evacuate && (!h.Enabled || !h.Live))
                {
                    throw new UserFacingException(marker is not null
                        ? $"host {h.Name} is already evacuated (disabled, marked by rollreboot); bring it back with 'rollreboot return --clustername {clusterName} --host {h.Name} --exec'"
                        : $"host {h.Name} is {(h.Live ? "disabled" : "not live")}: evacuate needs a live, enabled host");
                }

                if (_mode == RunMode.Return && marker is null && h.Enabled)
                {
                    throw new UserFacingException($"host {h.Name} is enabled and was not evacuated by rollreboot: nothing to return");
                }

                if (_mode == RunMode.Return && !exec)
                {
                    var vms = Evacuation.MarkedVms(marker, out _).Count;
                    await _env.Out.WriteLineAsync($"rollreboot return would enable {h.Name}{(h.Enabled ? " (already enabled)" : "")} and migrate {vms} VM(s) back to it, those still running elsewhere; run again with --exec to do it");
                    return ExitCodes.Success;
                }
            }

            if (!exec)
            {
                var pre = await Preflight.RunAsync(pool, cloud, planOptions, new HashSet<string>(), cancellationToken, commands: commandsForPreflight);
                if (fleet is not null)
                {
                    fleet.AddPlan(clusterName, pre.Plan);
                }
                else
                {
                    await WritePlanAsync(parse, format, pre.Plan, clusterName);
                }

                return pre.Plan.CanRun ? ExitCodes.Success : ExitCodes.PreflightBlocked;
            }

            RunState? previous = null;
            FileJournalStore store;
            if (_mode is RunMode.PlanOrRun or RunMode.Evacuate or RunMode.Return)
            {
                store = new FileJournalStore(Path.Combine(stateDir, "journals", $"{poolSnapshot.Uuid}-{runId}.jsonl"));
            }
            else
            {
                (store, previous) = FindOpenJournal(stateDir, poolSnapshot);
                runId = previous.RunId;
                if (_mode == RunMode.Resume && previous.Mode != "run")
                {
                    throw new UserFacingException($"the unfinished run of pool {poolSnapshot.Name} was 'rollreboot {previous.Mode}', which resume does not continue: undo it with 'rollreboot restore --clustername {clusterName}', then start it again");
                }

                var lockValue = poolSnapshot.OtherConfig.GetValueOrDefault(PoolLock.Key);
                if (lockValue is not null && !lockValue.Contains(previous.RunId, StringComparison.Ordinal))
                {
                    throw new UserFacingException($"pool {poolSnapshot.Name} is locked by another run ({PoolLock.Parse(lockValue).Owner}); it must finish first", ExitCodes.PreflightBlocked);
                }
            }

            var fresh = _mode is RunMode.PlanOrRun or RunMode.Evacuate or RunMode.Return;
            var probe = _mode is RunMode.Restore or RunMode.Evacuate or RunMode.Return ? null : CreateProbe(parse);
            var options = new RunOptions
            {
                HostTimeout = hostTimeout,
                BreakLock = Get(parse, _breakLock),
                Operator = _env.Get("USER") ?? _env.Get("LOGNAME") ?? "unknown",
                Machine = Environment.MachineName,
                Plan = planOptions,
                UseSshProof = probe is not null,
                PauseAfter = _mode == RunMode.Restore ? null : ValidPauseAfter(Get(parse, _pauseAfter)),
                WindowEnd = _mode == RunMode.Restore || Get(parse, _windowEnd) is not { } w ? null : TimeArguments.ParseWindowEnd(w, clock),
                HostDelay = _mode == RunMode.Restore || Get(parse, _hostDelay) is not { } d ? TimeSpan.Zero : TimeArguments.ParseDuration(d, "--host-delay"),
                Hooks = hooks,
                EvacuateOnly = _mode == RunMode.Evacuate,
                Halt = _mode != RunMode.Restore && Get(parse, _halt),
                PowerOnTimeout = _mode == RunMode.Restore ? TimeSpan.FromHours(4) : TimeArguments.ParseDuration(Get(parse, _powerOnTimeout) ?? "4h", "--power-on-timeout"),
            };
            log.Info("Run {RunId} on pool {Pool} (cluster {Cluster}); journal and log under {StateDir}", runId, poolSnapshot.Name, clusterName, stateDir);
            if (labLabel is not null)
            {
                log.Warn("This run is against {Lab}: a simulation, no real host is touched", labLabel);
            }
            await using var notifier = notifyUrl is null ? null : new Adapters.WebhookNotifier(notifyUrl, log, clock);
            if (notifyUrl is not null)
            {
                log.Info("Notifications go to {Url}", Adapters.WebhookNotifier.Redact(notifyUrl));
            }

            var services = new RunServices(pool, cloud, log, clock) { Probe = probe, LocalCommands = local, RemoteShell = remote, Notifier = notifier };
            var engine = new RunEngine(services, options, clusterName);
            RunReport report = _mode switch
            {
                RunMode.Restore => await engine.ContinueAsync(store, Core.Run.Engine.RunMode.Restore, CancellationToken.None, CancellationToken.None),
                RunMode.Resume => await RunWithSignalsAsync((stop, abort) => engine.ContinueAsync(store, Core.Run.Engine.RunMode.Resume, stop, abort), log, cancellationToken),
                RunMode.Return => await RunWithSignalsAsync((stop, abort) => engine.StartAsync(store, runId, Core.Run.Engine.RunMode.Return, poolSnapshot, targetHost, stop, abort), log, cancellationToken),
                RunMode.Evacuate => await RunWithSignalsAsync((stop, abort) => engine.StartAsync(store, runId, Core.Run.Engine.RunMode.Evacuate, poolSnapshot, targetHost, stop, abort), log, cancellationToken),
                _ => await RunWithSignalsAsync((stop, abort) => engine.StartAsync(store, runId, Core.Run.Engine.RunMode.Run, poolSnapshot, null, stop, abort), log, cancellationToken),
            };
            if (fleet is not null)
            {
                fleet.AddReport(clusterName, report);
                await _env.Out.WriteAsync($"== {clusterName} ==\n" + ReportWriter.ToText(report));
            }
            else
            {
                await WriteReportAsync(parse, report);
            }

            return report.Outcome switch
            {
                RunOutcome.Done => ExitCodes.Success,
                RunOutcome.Blocked => ExitCodes.PreflightBlocked,
                RunOutcome.StoppedRestored => ExitCodes.StoppedRestored,
                RunOutcome.Interrupted => ExitCodes.Interrupted,
                _ => ExitCodes.NeedsOperator,
            };
        }
        catch (XapiException e)
        {
            throw new UserFacingException(Connections.Describe(e, settings));
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(CloudStackErrors.Describe(e));
        }
    }

    /// <summary>
    /// Resume and restore may start while the dead run's master is still rebooting: wait for the pool,
    /// bounded by --host-timeout, instead of failing at once.
    /// </summary>
    private async Task<RollingReboot.Core.Pool.PoolSnapshot> ReadWhenReachableAsync(XapiPoolConnection pool, TimeProvider clock, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = clock.GetUtcNow() + timeout;
        while (true)
        {
            try
            {
                return await pool.ReadAsync(cancellationToken);
            }
            catch (XapiException e) when ((e.IsUnreachable || e.Code is "HOST_STILL_BOOTING" or "SESSION_INVALID") && clock.GetUtcNow() < deadline)
            {
                await _env.Error.WriteLineAsync($"rollreboot: the pool does not answer yet ({e.Code}); waiting for its master");
                await Task.Delay(TimeSpan.FromSeconds(10), clock, cancellationToken);
            }
        }
    }

    /// <summary>The newest journal of this pool whose run did not end.</summary>
    private static (FileJournalStore Store, RunState State) FindOpenJournal(string stateDir, RollingReboot.Core.Pool.PoolSnapshot pool)
    {
        var dir = Path.Combine(stateDir, "journals");
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir, pool.Uuid + "-*.jsonl").Order(StringComparer.Ordinal).Reverse().ToList() : [];
        foreach (var file in files)
        {
            var store = new FileJournalStore(file);
            RunState state;
            try
            {
                state = RunEngine.ReadState(store);
            }
            catch (JournalException e)
            {
                throw new UserFacingException($"journal {file} cannot be read: {e.Message}");
            }

            if (state.PoolUuid != pool.Uuid)
            {
                throw new UserFacingException($"journal {file} belongs to pool {state.PoolUuid}, not {pool.Name} ({pool.Uuid})");
            }

            if (!state.Ended)
            {
                return (store, state);
            }
        }

        throw new UserFacingException($"no unfinished run of pool {pool.Name} in {dir}: nothing to resume or restore");
    }

    private static async Task<RunReport> RunWithSignalsAsync(Func<CancellationToken, CancellationToken, Task<RunReport>> run, IRunLog log, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext c)
        {
            c.Cancel = true;
            if (Interlocked.Increment(ref signals) == 1)
            {
                log.Warn("Stop requested: finishing work in flight, then restoring (press Ctrl-C again to stop waiting for migrations; the restore still runs)");
                stop.Cancel();
            }
            else
            {
                log.Warn("Second stop request: no longer waiting for work in flight; restoring");
                abort.Cancel();
            }
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        return await run(stop.Token, abort.Token);
    }

    private async Task WritePlanAsync(ParseResult parse, string format, Plan plan, string clusterName)
    {
        var text = format switch
        {
            "json" => PlanWriter.ToJson(plan, clusterName),
            "markdown" => PlanWriter.ToMarkdown(plan, clusterName),
            _ => PlanWriter.ToText(plan, clusterName),
        };
        if (Get(parse, _output) is { } file)
        {
            await File.WriteAllTextAsync(file.FullName, text);
            await _env.Error.WriteLineAsync($"plan written to {file.FullName}");
        }
        else
        {
            await _env.Out.WriteAsync(text.EndsWith('\n') ? text : text + "\n");
        }
    }

    private async Task WriteReportAsync(ParseResult parse, RunReport report)
    {
        var text = ReportWriter.ToText(report);
        await _env.Out.WriteAsync(text);
        if (Get(parse, _report) is { } file)
        {
            await File.WriteAllTextAsync(file.FullName, ReportWriter.ToMarkdown(report));
        }

        if (Get(parse, _reportJson) is { } json)
        {
            await File.WriteAllTextAsync(json.FullName, ReportWriter.ToJson(report));
        }
    }

    private static int ValidThreads(int threads) =>
        threads is < 1 or > 64 ? throw new UserFacingException($"--threads {threads} must be between 1 and 64") : threads;

    private PlanOptions BuildPlanOptions(ParseResult parse)
    {
        var threads = ValidThreads(Get(parse, _threads));

        var maxDownText = (Get(parse, _maxHostsDown) ?? "1").Trim();
        int maxDown;
        if (maxDownText.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            maxDown = PlanOptions.AutoMaxHostsDown;
        }
        else if (!int.TryParse(maxDownText, NumberStyles.Integer, CultureInfo.InvariantCulture, out maxDown) || maxDown < 1)
        {
            throw new UserFacingException($"--max-hosts-down {maxDownText} must be a whole number of at least 1, or 'auto'");
        }

        var model = new MigrationModel();
        if (Get(parse, _assumeLink) is { } link)
        {
            if (link <= 0)
            {
                throw new UserFacingException("--assume-link-mbps must be positive");
            }

            model = model with { HostLinkMBps = link };
        }

        var reboot = Get(parse, _assumeReboot) ?? 300;
        if (reboot <= 0)
        {
            throw new UserFacingException("--assume-reboot-seconds must be positive");
        }

        return new PlanOptions
        {
            Threads = threads,
            MaxHostsDown = maxDown,
            IncludeHosts = Split(Get(parse, _hosts)),
            IgnoreHosts = Split(Get(parse, _ignoreHosts)),
            OnlyNeedingReboot = Get(parse, _onlyNeeding),
            ReturnVms = Get(parse, _returnVms),
            MigrationModel = model,
            RebootSeconds = reboot,
        };
    }

    private static List<string> Split(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct().ToList();

    private static int? ValidPauseAfter(int? n) =>
        n is < 1 ? throw new UserFacingException($"--pause-after {n} must be at least 1") : n;

    private CloudStackClient? CreateCloudStack(ParseResult parse, TimeProvider clock)
    {
        CloudStackCredentials? credentials;
        try
        {
            // ~/.cmk/config is read only when a CloudMonkey profile is asked for (option or environment).
            var profile = Get(parse, _cmkProfile);
            var wantsProfile = profile is not null || _env.Get(CloudStackCredentials.ProfileVariable) is not null;
            credentials = CloudStackCredentials.Resolve(_env.GetVariable, profile, wantsProfile && _env.Get("HOME") is { } home ? Path.Combine(home, ".cmk", "config") : null);
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(e.Message);
        }

        if (credentials is null)
        {
            return null;
        }

        // Network timeouts are about the wire, not the simulated pool: wall clock. The run's own waits use the run's clock.
        _ = clock;
        return new CloudStackClient(CloudStackClientOptions.FromCredentials(credentials), timeProvider: TimeProvider.System);
    }

    private async Task<CloudStackCluster> FindClusterAsync(ICloudStack api, string name, string? zone, CancellationToken cancellationToken)
    {
        var found = await api.FindClustersAsync(name, zone, cancellationToken);
        return found.Count switch
        {
            0 => throw new UserFacingException($"CloudStack has no cluster named '{name}'{(zone is null ? "" : " in zone " + zone)}; check the name (cmk list clusters)"),
            1 => found[0],
            _ => throw new UserFacingException($"CloudStack has {found.Count} clusters named '{name}' (zones {string.Join(", ", found.Select(c => c.ZoneName))}); add --zone to pick one"),
        };
    }

    private IHostProbe? CreateProbe(ParseResult parse)
    {
        if (_env.Get(EnvNames.Ssh) is "off" or "0" or "false")
        {
            return null;
        }

        try
        {
            var options = SshProbeOptions.FromEnvironment(_env.GetVariable) with { AcceptNew = Get(parse, _sshAcceptNew) };
            // SSH timeouts are about the network, not the simulated pool: wall clock.
            return new SshHostProbe(options, TimeProvider.System);
        }
        catch (SshProbeConfigurationException e)
        {
            throw new UserFacingException("SSH: " + e.Message + $" (set {EnvNames.Ssh}=off to prove reboots through XAPI only)");
        }
    }
}

using System.CommandLine;
using RollingReboot.CloudStack;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// <c>rollreboot --clustername NAME</c>: the plan (dry run, the default); with <c>--exec</c>, the run. Several
/// clusters (or <c>--all-clusters</c>) form a fleet. With no pool configured at all, the embedded lab.
/// </summary>
internal sealed class RunCommand : RunCommandBase
{
    public RunCommand(CliEnvironment env)
        : base(new RootCommand("rollreboot: reboot every host of a XenServer / XCP-ng pool managed by CloudStack, one after the other, while every VM keeps running."), env, static o =>
            [o.ClusterName, o.Zone, o.AllClusters, o.ParallelClusters, o.Exec, o.Format, o.Output, o.Report, o.ReportJson, o.Threads, o.MaxHostsDown, o.Hosts, o.IgnoreHosts,
             o.OnlyNeedingReboot, o.ReturnVms, o.HostTimeout, o.BreakLock, o.CmkProfile, o.SshAcceptNew, o.AssumeRebootSeconds, o.AssumeLinkMbps, o.Verbose, o.PauseAfter,
             o.WindowEnd, o.HostDelay, o.MetricsFile, o.IgnoreRunningTasks, .. o.Gates, .. o.Migration, .. o.Updates, .. o.FailurePolicy, .. o.Hooks, .. o.Following])
    {
    }

    public RootCommand Root => (RootCommand)Command;

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        if (!Xapi.NothingConfigured(parse, Env))
        {
            return await RunConfiguredAsync(parse, Env, null, cancellationToken);
        }

        // No pool configured at all: the embedded lab is the default, announced loudly, never silently.
        await using var lab = await EmbeddedLab.StartAsync(Env, cancellationToken);
        return await RunConfiguredAsync(parse, lab.Environment, lab.Label, cancellationToken);
    }

    /// <param name="env">The process's environment, or the embedded lab's.</param>
    private async Task<int> RunConfiguredAsync(ParseResult parse, CliEnvironment env, string? labLabel, CancellationToken cancellationToken)
    {
        var names = RunOptionsBinder.Split(parse.GetValue(Options.ClusterName));
        var all = parse.GetValue(Options.AllClusters);
        if (names.Count == 0 && !all)
        {
            throw new UserFacingException(RunOptionsBinder.ClusterRequired);
        }

        return names.Count == 1 && !all
            ? await RunClusterAsync(parse, env, names[0], null, labLabel, cancellationToken)
            : await RunFleetAsync(parse, env, names, all, labLabel, cancellationToken);
    }

    /// <summary>
    /// Several clusters in one invocation: one after another, or K at a time. Each has its own pool
    /// connection (found through the addresses CloudStack lists for its hosts), lock, journal and log;
    /// after a cluster stops (exit 4, 5 or 130) no further cluster is started. One report for all.
    /// </summary>
    private async Task<int> RunFleetAsync(ParseResult parse, CliEnvironment env, List<string> names, bool all, string? labLabel, CancellationToken cancellationToken)
    {
        var parallel = RunOptionsBinder.ValidParallelClusters(parse.GetValue(Options.ParallelClusters));
        // Checks ROLLREBOOT_TIME_SCALE before CloudStack is asked anything, as each cluster's session will.
        _ = env.CreateClock();
        using var cloudClient = RunSession.CreateCloudStack(env, parse.GetValue(Options.CmkProfile))
            ?? throw new UserFacingException("a fleet (several --clustername, --all-clusters) needs CloudStack settings: CloudStack says where each cluster's pool is");
        if (all)
        {
            names = [.. names.Concat(await ZoneClustersAsync(cloudClient, parse.GetValue(Options.Zone), cancellationToken)).Distinct(StringComparer.Ordinal)];
        }

        var fleet = new FleetContext(names);
        await env.Error.WriteLineAsync($"rollreboot: fleet of {names.Count} cluster(s): {string.Join(", ", names)}; {(parallel > 1 ? $"{parallel} at a time" : "one after another")}");
        using var gate = new SemaphoreSlim(parallel);
        await Task.WhenAll(names.Select(name => RunFleetMemberAsync(parse, env, name, fleet, gate, labLabel, cancellationToken)).ToList());
        return await fleet.WriteAsync(env, parse.GetValue(Options.Exec), parse.GetValue(Options.Format) ?? "text", parse.GetValue(Options.Output), parse.GetValue(Options.Report), parse.GetValue(Options.ReportJson));
    }

    /// <summary>--all-clusters: the XenServer clusters of the zone, by name.</summary>
    private static async Task<List<string>> ZoneClustersAsync(CloudStackClient cloudClient, string? zone, CancellationToken cancellationToken)
    {
        if (zone is null)
        {
            throw new UserFacingException("--all-clusters needs --zone: the zone whose XenServer clusters to reboot");
        }

        var found = (await cloudClient.ListClustersAsync(zone, cancellationToken))
            .Where(c => c.HypervisorType.Equals("XenServer", StringComparison.OrdinalIgnoreCase)).Select(c => c.Name).Order(StringComparer.Ordinal).ToList();
        return found.Count > 0 ? found : throw new UserFacingException($"CloudStack has no XenServer cluster in zone {zone}");
    }

    private async Task RunFleetMemberAsync(ParseResult parse, CliEnvironment env, string name, FleetContext fleet, SemaphoreSlim gate, string? labLabel, CancellationToken cancellationToken)
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
                code = await RunClusterAsync(parse, env, name, fleet, labLabel, cancellationToken);
            }
            catch (UserFacingException e)
            {
                await env.Error.WriteLineAsync($"rollreboot: {name}: {e.Message}");
                code = e.ExitCode;
            }

            fleet.Record(name, code, null);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<int> RunClusterAsync(ParseResult parse, CliEnvironment env, string cluster, FleetContext? fleet, string? labLabel, CancellationToken cancellationToken)
    {
        var format = RunOptionsBinder.ValidFormat(parse.GetValue(Options.Format));
        var plan = RunOptionsBinder.BuildPlanOptions(parse, Options);
        var hooks = RunOptionsBinder.BuildHooks(parse, Options);
        var notify = RunOptionsBinder.Notify(parse, Options, env);
        var mail = RunOptionsBinder.Mail(parse, Options, env);
        var hostTimeout = RunOptionsBinder.HostTimeout(parse, Options);
        var exec = parse.GetValue(Options.Exec);
        var acceptNew = parse.GetValue(Options.SshAcceptNew);
        var gates = RunOptionsBinder.BuildGates(parse, Options, env, env.CreateClock().LocalTimeZone);
        return await InSessionAsync(parse, Request(parse, env, cluster, exec, fleet, labLabel), async session =>
        {
            // The dry run's CloudStack reads go on while the pool is read (a run's preflight reads both together itself).
            await using var cloudAhead = !exec && session.Cloud is { } cloud ? Preflight.CloudStackAhead.Start(cloud, cancellationToken) : null;
            var pool = await session.ReadPoolAsync(cancellationToken);
            RunOptionsBinder.CheckAgainstPool(plan, pool);
            var alerts = session.CreateAlertGate(gates.Alerts);
            var runners = session.CreateHookRunners(hooks, acceptNew, alerts);
            if (!exec)
            {
                return await PlanAsync(parse, session, pool, plan, runners.Preflight, format, cancellationToken, gates.Window, cloudAhead);
            }

            var store = JournalLocator.NewJournal(session.StateDir, pool, session.RunId);
            var metrics = MetricsFor(parse, session, pool, plan, store);
            var invoker = RunInvoker.Start(store, session.RunId, pool, "run");
            var probe = session.CreateProbe(acceptNew);
            var options = BuildRunOptions(parse, session, new RunInputs(hostTimeout, plan, hooks, UseSshProof: probe is not null, EvacuateOnly: false) { Gates = gates });
            var parts = session.PrepareRun(session.RunId, pool, options, probe, runners, notify, alerts);
            var report = await FollowAsync(parse, session, pool, plan, store, parts, invoker.RunAsync, cancellationToken);
            metrics?.Finish(report);
            return await ReportAsync(parse, session, report, mail);
        }, cancellationToken);
    }
}

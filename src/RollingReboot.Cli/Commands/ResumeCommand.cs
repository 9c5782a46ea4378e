using System.CommandLine;

namespace RollingReboot.Cli.Commands;

/// <summary><c>rollreboot resume</c>: continue the pool's unfinished run from its journal.</summary>
internal sealed class ResumeCommand : RunCommandBase
{
    public ResumeCommand(CliEnvironment env)
        : base(new Command("resume", "Continue a run that stopped (crash, kill -9, host timeout) from its journal; hosts already rebooted in it are not rebooted again."), env, static o =>
            [o.ClusterName, o.Zone, o.Report, o.ReportJson, o.Threads, o.MaxHostsDown, o.Hosts, o.IgnoreHosts, o.OnlyNeedingReboot, o.HostTimeout, o.CmkProfile, o.SshAcceptNew,
             o.Verbose, o.PauseAfter, o.WindowEnd, o.HostDelay, o.MetricsFile, o.IgnoreRunningTasks, .. o.Gates, .. o.Migration, .. o.Updates, .. o.FailurePolicy, .. o.Hooks, .. o.Following])
    {
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var cluster = SingleCluster(parse);
        var plan = RunOptionsBinder.BuildPlanOptions(parse, Options);
        var hooks = RunOptionsBinder.BuildHooks(parse, Options);
        var notify = RunOptionsBinder.Notify(parse, Options, Env);
        var mail = RunOptionsBinder.Mail(parse, Options, Env);
        var hostTimeout = RunOptionsBinder.HostTimeout(parse, Options);
        var acceptNew = parse.GetValue(Options.SshAcceptNew);
        var gates = RunOptionsBinder.BuildGates(parse, Options, Env, Env.CreateClock().LocalTimeZone);
        return await InSessionAsync(parse, Request(parse, Env, cluster, exec: true), async session =>
        {
            var pool = await session.ReadWhenReachableAsync(hostTimeout, cancellationToken);
            RunOptionsBinder.CheckAgainstPool(plan, pool);
            var alerts = session.CreateAlertGate(gates.Alerts);
            var runners = session.CreateHookRunners(hooks, acceptNew, alerts);
            var (store, previous) = JournalLocator.FindOpenJournal(session.StateDir, pool);
            if (previous.Mode != "run")
            {
                throw new UserFacingException($"the unfinished run of pool {pool.Name} was 'rollreboot {previous.Mode}', which resume does not continue: undo it with 'rollreboot restore --clustername {cluster}', then start it again");
            }

            CheckLock(pool, previous);
            var metrics = MetricsFor(parse, session, pool, plan, store);
            var invoker = RunInvoker.Continue(store, "resume", previous, pool);
            var probe = session.CreateProbe(acceptNew);
            var options = BuildRunOptions(parse, session, new RunInputs(hostTimeout, plan, hooks, UseSshProof: probe is not null, EvacuateOnly: false) { Gates = gates });
            var parts = session.PrepareRun(previous.RunId, pool, options, probe, runners, notify, alerts);
            var report = await FollowAsync(parse, session, pool, plan, store, parts, invoker.ResumeAsync, cancellationToken);
            metrics?.Finish(report);
            return await ReportAsync(parse, session, report, mail);
        }, cancellationToken);
    }
}

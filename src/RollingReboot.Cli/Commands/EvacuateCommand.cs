using System.CommandLine;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary><c>rollreboot evacuate --host H</c>: empty one host and leave it disabled for maintenance.</summary>
internal sealed class EvacuateCommand : RunCommandBase
{
    public EvacuateCommand(CliEnvironment env)
        : base(new Command("evacuate", "Empty one host for maintenance: disable it and live-migrate its VMs to the other hosts (dry run unless --exec). It stays disabled until 'rollreboot return'."), env, static o =>
            [o.ClusterName, o.Zone, o.Host, o.Exec, o.Format, o.Output, o.Report, o.ReportJson, o.Threads, o.CmkProfile, o.Verbose, o.Notify, o.NotifyTemplate, .. o.Migration])
    {
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var cluster = SingleCluster(parse);
        var format = RunOptionsBinder.ValidFormat(parse.GetValue(Options.Format));
        var plan = RunOptionsBinder.OneHostPlanOptions(parse, Options);
        var notify = RunOptionsBinder.Notify(parse, Options, Env);
        var hostTimeout = RunOptionsBinder.HostTimeout(parse, Options);
        var exec = parse.GetValue(Options.Exec);
        return await InSessionAsync(parse, Request(parse, Env, cluster, exec), async session =>
        {
            var pool = await session.ReadPoolAsync(cancellationToken);
            RunOptionsBinder.CheckAgainstPool(plan, pool);
            var host = pool.FindHost(plan.IncludeHosts[0])!;
            if (!host.Enabled || !host.Live)
            {
                throw new UserFacingException(RunInvoker.EvacuationMarker(pool, host.Uuid) is not null
                    ? $"host {host.Name} is already evacuated (disabled, marked by rollreboot); bring it back with 'rollreboot return --clustername {cluster} --host {host.Name} --exec'"
                    : $"host {host.Name} is {(host.Live ? "disabled" : "not live")}: evacuate needs a live, enabled host");
            }

            if (!exec)
            {
                return await PlanAsync(parse, session, pool, plan, commands: null, format, cancellationToken);
            }

            var invoker = RunInvoker.Start(JournalLocator.NewJournal(session.StateDir, pool, session.RunId), session.RunId, pool, "evacuate");
            var options = BuildRunOptions(parse, session, new RunInputs(hostTimeout, plan, new HookOptions(), UseSshProof: false, EvacuateOnly: true));
            var parts = session.PrepareRun(session.RunId, pool, options, probe: null, HookRunners.None, notify);
            var report = await PosixSignalScope.RunWithSignalsAsync((stop, abort) => invoker.RunAsync(parts, stop, abort), session.Log, cancellationToken);
            return await ReportAsync(parse, session, report);
        }, cancellationToken);
    }
}

using System.CommandLine;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary><c>rollreboot return --host H</c>: bring a host emptied by evacuate back, with its VMs.</summary>
internal sealed class ReturnCommand : RunCommandBase
{
    public ReturnCommand(CliEnvironment env)
        : base(new Command("return", "Bring a host emptied by 'rollreboot evacuate' back into service: enable it and migrate its VMs back to it (dry run unless --exec)."), env, static o =>
            [o.ClusterName, o.Zone, o.Host, o.Exec, o.Report, o.ReportJson, o.Threads, o.CmkProfile, o.Verbose, o.Notify, o.NotifyTemplate, .. o.Migration])
    {
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var cluster = SingleCluster(parse);
        var plan = RunOptionsBinder.OneHostPlanOptions(parse, Options);
        var notify = RunOptionsBinder.Notify(parse, Options, Env);
        var hostTimeout = RunOptionsBinder.HostTimeout(parse, Options);
        var exec = parse.GetValue(Options.Exec);
        return await InSessionAsync(parse, Request(parse, Env, cluster, exec), async session =>
        {
            var pool = await session.ReadPoolAsync(cancellationToken);
            RunOptionsBinder.CheckAgainstPool(plan, pool);
            var host = pool.FindHost(plan.IncludeHosts[0])!;
            var marker = RunInvoker.EvacuationMarker(pool, host.Uuid);
            if (marker is null && host.Enabled)
            {
                throw new UserFacingException($"host {host.Name} is enabled and was not evacuated by rollreboot: nothing to return");
            }

            if (!exec)
            {
                await session.Env.Out.WriteLineAsync($"rollreboot return would enable {host.Name}{(host.Enabled ? " (already enabled)" : "")} and migrate {RunInvoker.EvacuatedVmCount(marker)} VM(s) back to it, those still running elsewhere; run again with --exec to do it");
                return ExitCodes.Success;
            }

            var invoker = RunInvoker.Start(JournalLocator.NewJournal(session.StateDir, pool, session.RunId), session.RunId, pool, "return");
            var options = BuildRunOptions(parse, session, new RunInputs(hostTimeout, plan, new HookOptions(), UseSshProof: false, EvacuateOnly: false));
            var parts = session.PrepareRun(session.RunId, pool, options, probe: null, HookRunners.None, notify);
            var report = await PosixSignalScope.RunWithSignalsAsync((stop, abort) => invoker.ReturnAsync(parts, host.Uuid, stop, abort), session.Log, cancellationToken);
            return await ReportAsync(parse, session, report);
        }, cancellationToken);
    }
}

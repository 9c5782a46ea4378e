using System.CommandLine;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Run;

namespace RollingReboot.Cli.Commands;

/// <summary><c>rollreboot restore</c>: undo what the pool's unfinished run changed, without continuing it.</summary>
internal sealed class RestoreCommand : RunCommandBase
{
    public RestoreCommand(CliEnvironment env)
        : base(new Command("restore", "Undo what a stopped run changed (HA, CloudStack state, disabled hosts, the lock) without continuing it."), env, static o =>
            [o.ClusterName, o.Zone, o.Report, o.ReportJson, o.HostTimeout, o.CmkProfile, o.Verbose])
    {
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var cluster = SingleCluster(parse);
        var plan = new PlanOptions();
        var hostTimeout = RunOptionsBinder.HostTimeout(parse, Options);
        return await InSessionAsync(parse, Request(parse, Env, cluster, exec: true), async session =>
        {
            var pool = await session.ReadWhenReachableAsync(hostTimeout, cancellationToken);
            RunOptionsBinder.CheckAgainstPool(plan, pool);
            var (store, previous) = JournalLocator.FindOpenJournal(session.StateDir, pool);
            CheckLock(pool, previous);
            var invoker = RunInvoker.Continue(store, "restore", previous, pool);
            // Restore proves nothing over SSH, sends no notifications and ignores Ctrl-C: it must not be cut short.
            var options = BuildRunOptions(parse, session, new RunInputs(hostTimeout, plan, new HookOptions(), UseSshProof: false, EvacuateOnly: false));
            var parts = session.PrepareRun(previous.RunId, pool, options, probe: null, HookRunners.None, notify: null);
            var report = await invoker.RestoreAsync(parts);
            return await ReportAsync(parse, session, report);
        }, cancellationToken);
    }
}

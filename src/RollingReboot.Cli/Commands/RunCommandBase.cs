using System.CommandLine;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Xapi;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// What the plan/run, resume, restore, evacuate and return share: their options, the session around one cluster,
/// and the plan and report output. It configures a <see cref="System.CommandLine.Command"/> rather than being one
/// because the plan/run is the <see cref="RootCommand"/> itself (it keeps --help, --version and the directives).
/// </summary>
internal abstract class RunCommandBase
{
    /// <param name="declare">The options this command has, in the order --help shows them; the XAPI options follow.</param>
    protected RunCommandBase(Command command, CliEnvironment env, Func<RunOptionsDefinitions, Option[]> declare)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(declare);
        Command = command;
        Env = env;
        foreach (var option in declare(Options))
        {
            command.Options.Add(option);
        }

        Xapi.AddTo(command);
        command.SetAction(async (parse, ct) => await ExecuteAsync(parse, ct));
    }

    public Command Command { get; }

    protected CliEnvironment Env { get; }

    protected RunOptionsDefinitions Options { get; } = new();

    protected XapiOptions Xapi { get; } = new();

    protected abstract Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancellationToken);

    /// <summary>The one cluster of --clustername: every command but the plan/run works on one.</summary>
    protected string SingleCluster(ParseResult parse)
    {
        var names = RunOptionsBinder.Split(parse.GetValue(Options.ClusterName));
        return names.Count switch
        {
            0 => throw new UserFacingException(RunOptionsBinder.ClusterRequired),
            1 => names[0],
            _ => throw new UserFacingException($"'rollreboot {Command.Name}' works on one cluster: give a single --clustername"),
        };
    }

    protected SessionRequest Request(ParseResult parse, CliEnvironment env, string cluster, bool exec, FleetContext? fleet = null, string? labLabel = null) =>
        new(env, cluster, parse.GetValue(Options.Zone), parse.GetValue(Options.CmkProfile), exec, parse.GetValue(Options.Verbose), fleet, labLabel);

    /// <summary>Opens the cluster's session, runs <paramref name="body"/> in it, and says XAPI and CloudStack failures in one line.</summary>
    protected async Task<int> InSessionAsync(ParseResult parse, SessionRequest request, Func<RunSession, Task<int>> body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        await using var session = await RunSession.OpenAsync(request, Xapi, parse, cancellationToken);
        try
        {
            return await body(session);
        }
        catch (XapiException e)
        {
            throw new UserFacingException(Connections.Describe(e, session.Settings));
        }
        catch (CloudStackException e)
        {
            throw new UserFacingException(CloudStackErrors.Describe(e));
        }
    }

    protected RunOptions BuildRunOptions(ParseResult parse, RunSession session, RunInputs inputs) =>
        RunOptionsBinder.BuildRunOptions(parse, Options, session.Env, session.Clock, inputs);

    /// <summary>Resume and restore: the unfinished run must still hold the pool's lock, or nobody may.</summary>
    protected static void CheckLock(PoolSnapshot pool, PreviousRun previous)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(previous);
        var lockValue = RunInvoker.LockOwner(pool);
        if (lockValue is not null && !lockValue.Contains(previous.RunId, StringComparison.Ordinal))
        {
            throw new UserFacingException($"pool {pool.Name} is locked by another run ({RunInvoker.DescribeLock(lockValue)}); it must finish first", ExitCodes.PreflightBlocked);
        }
    }

    /// <summary>--metrics-file: checked, loaded with what the journal already has, and fed every line it gets.</summary>
    protected MetricsFile? MetricsFor(ParseResult parse, RunSession session, PoolSnapshot pool, PlanOptions plan, FileJournalStore store)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(store);
        if (parse.GetValue(Options.MetricsFile) is not { } file)
        {
            return null;
        }

        MetricsFile.CheckWritable(file.FullName);
        var metrics = new MetricsFile(file.FullName, session.Cluster, MetricsFile.Guess(pool, plan), session.Clock);
        metrics.Load(store.ReadAll());
        store.Appended = metrics.Observe;
        return metrics;
    }

    /// <summary>
    /// The run itself under the signals' scope, followed by the live view when stderr is a terminal and --no-live was
    /// not given (never in a fleet, whose clusters share the terminal): the view is fed by the journal lines, the log's
    /// phase lines, the pools the run reads and its migrations' task progress, and takes the log's stderr lines over
    /// while it is shown. Otherwise the run is exactly as without it.
    /// </summary>
    protected async Task<RunReport> FollowAsync(ParseResult parse, RunSession session, PoolSnapshot pool, PlanOptions plan, FileJournalStore store, RunParts parts,
        Func<RunParts, CancellationToken, CancellationToken, Task<RunReport>> run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(run);
        if (session.Fleet is not null || !LiveView.Wanted(session.Env, parse.GetValue(Options.NoLive)))
        {
            return await PosixSignalScope.RunWithSignalsAsync((stop, abort) => run(parts, stop, abort), parts.Log, cancellationToken);
        }

        var model = new LiveModel(session.Cluster, pool, MetricsFile.Guess(pool, plan), session.Clock, plan.RebootSeconds, plan.MigrationModel.HostLinkMBps);
        model.Load(store.ReadAll());
        var live = LiveView.Start(session.Env.Error, model);
        try
        {
            store.Appended += line =>
            {
                model.Observe(line);
                live.Changed();
            };
            session.ConsoleLog.Divert(live.Log);
            var watched = parts with
            {
                Pool = new Adapters.ObservedPool(parts.Pool, model.PoolRead, model.MigrationProgress),
                Log = new LiveRunLog(parts.Log, model, live),
            };
            var report = await PosixSignalScope.RunWithSignalsAsync((stop, abort) => run(watched, stop, abort), watched.Log, cancellationToken);
            model.Finish(report);
            return report;
        }
        finally
        {
            await live.StopAsync();
            session.ConsoleLog.Divert(null);
        }
    }

    /// <summary>The dry run: preflight's plan, printed (or gathered for the fleet); exit 3 when it cannot run.</summary>
    /// <param name="pool">The pool as the command has just read it: preflight plans on it rather than reading it again.</param>
    /// <param name="window">--window: the plan says whether it is open now, until when, or when it opens next.</param>
    protected async Task<int> PlanAsync(ParseResult parse, RunSession session, PoolSnapshot pool, PlanOptions plan, PreflightCommands? commands, string format, CancellationToken cancellationToken,
        Core.Time.MaintenanceWindow? window = null, Preflight.CloudStackAhead? cloudAhead = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        var pre = await Preflight.RunAsync(session.Pool, session.Cloud, plan, new HashSet<string>(), cancellationToken, commands: commands, snapshot: pool, cloudAhead: cloudAhead);
        if (window is not null)
        {
            var windowEnd = parse.GetValue(Options.WindowEnd) is { } w ? TimeArguments.ParseWindowEnd(w, session.Clock) : (DateTimeOffset?)null;
            pre = pre with { Plan = pre.Plan with { Window = PlanWindow.For(window, windowEnd, session.Clock.GetUtcNow(), pre.Plan.Estimate.TotalSeconds) } };
        }

        if (session.Fleet is not null)
        {
            session.Fleet.AddPlan(session.Cluster, pre.Plan);
        }
        else
        {
            await WritePlanAsync(session.Env, format, pre.Plan, session.Cluster, parse.GetValue(Options.Output));
        }

        return pre.Plan.CanRun ? ExitCodes.Success : ExitCodes.PreflightBlocked;
    }

    /// <summary>The run's report on stdout (and in --report, --report-json), or gathered for the fleet; its exit code.</summary>
    /// <param name="mail">--mail-to: the summary is mailed on every outcome, after the report files are written.</param>
    protected async Task<int> ReportAsync(ParseResult parse, RunSession session, RunReport report, Adapters.MailSettings? mail = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(report);
        try
        {
            return await WriteReportAsync(parse, session, report);
        }
        finally
        {
            if (mail is not null)
            {
                await mail.SendAsync(report, session.Cluster, session.Clock, session.Log);
            }
        }
    }

    private async Task<int> WriteReportAsync(ParseResult parse, RunSession session, RunReport report)
    {
        if (session.Fleet is not null)
        {
            session.Fleet.AddReport(session.Cluster, report);
            await session.Env.Out.WriteAsync($"== {session.Cluster} ==\n" + ReportWriter.ToText(report));
            return ExitCodes.For(report.Outcome);
        }

        await session.Env.Out.WriteAsync(ReportWriter.ToText(report));
        if (parse.GetValue(Options.Report) is { } markdown)
        {
            await File.WriteAllTextAsync(markdown.FullName, ReportWriter.ToMarkdown(report));
        }

        if (parse.GetValue(Options.ReportJson) is { } json)
        {
            await File.WriteAllTextAsync(json.FullName, ReportWriter.ToJson(report));
        }

        return ExitCodes.For(report.Outcome);
    }

    private static async Task WritePlanAsync(CliEnvironment env, string format, Plan plan, string cluster, FileInfo? output)
    {
        var text = format switch
        {
            "json" => PlanWriter.ToJson(plan, cluster),
            "markdown" => PlanWriter.ToMarkdown(plan, cluster),
            _ => PlanWriter.ToText(plan, cluster),
        };
        if (output is not null)
        {
            await File.WriteAllTextAsync(output.FullName, text);
            await env.Error.WriteLineAsync($"plan written to {output.FullName}");
        }
        else
        {
            await env.Out.WriteAsync(text.EndsWith('\n') ? text : text + "\n");
        }
    }
}

/// <summary>The run's log, with its phase lines also given to the live view.</summary>
internal sealed class LiveRunLog(IRunLog inner, LiveModel model, LiveView view) : IRunLog
{
    public void Info(string template, params object?[] values) => inner.Info(template, values);

    public void Warn(string template, params object?[] values) => inner.Warn(template, values);

    public void Error(string template, params object?[] values) => inner.Error(template, values);

    public void HostPhase(string host, string phase)
    {
        model.Phase(host, phase);
        inner.HostPhase(host, phase);
        view.Changed();
    }
}

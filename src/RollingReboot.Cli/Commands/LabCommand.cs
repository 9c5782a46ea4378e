using System.CommandLine;
using System.Runtime.InteropServices;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// <c>rollreboot lab --scenario FILE [--scenario FILE...] [--time-scale X]</c>: the simulated pool and its CloudStack;
/// with several scenarios, a fleet: one pool per scenario, one CloudStack listing them all.
/// </summary>
internal static class LabCommand
{
    private static readonly Option<FileInfo[]> s_scenario = new("--scenario")
    {
        Description = "Scenario file (JSON, see docs/lab.md); repeat it for a fleet: one pool per file, one CloudStack for all",
        Required = true,
    };

    private static readonly Option<double> s_timeScale = new("--time-scale")
    {
        Description = "Simulated seconds per wall-clock second (100 runs a 5-minute reboot in 3 s)",
        DefaultValueFactory = _ => 1.0,
    };

    public static Command Create(CliEnvironment env)
    {
        var command = new Command("lab", "Run a simulated XenServer pool with its CloudStack on loopback, to rehearse a run. Prints one JSON ready line with the environment to use.")
        {
            s_scenario,
            s_timeScale,
        };
        command.SetAction(async (parse, ct) => await RunAsync(env, parse.GetValue(s_scenario)!, parse.GetValue(s_timeScale), ct));
        return command;
    }

    private static async Task<int> RunAsync(CliEnvironment env, FileInfo[] scenarioFiles, double timeScale, CancellationToken cancellationToken)
    {
        if (timeScale is <= 0 or > 100_000 || double.IsNaN(timeScale))
        {
            throw new UserFacingException($"--time-scale {timeScale} must be above 0 and at most 100000");
        }

        var scenarios = new List<ScenarioFile>();
        try
        {
            foreach (var file in scenarioFiles)
            {
                scenarios.Add(ScenarioLoader.LoadFile(file.FullName));
            }
        }
        catch (ScenarioException e)
        {
            throw new UserFacingException("invalid scenario: " + e.Message);
        }

        try
        {
            FleetValidation.Validate(scenarios);
        }
        catch (ScenarioException e)
        {
            throw new UserFacingException("invalid fleet: " + e.Message);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });

        await using var lab = await LabRuntime.StartAsync(scenarios, timeScale, env.Error, stop.Token);
        await env.Out.WriteLineAsync(lab.ReadyLine());
        await env.Out.FlushAsync(CancellationToken.None);
        if (scenarios.Count == 1)
        {
            var scenario = scenarios[0];
            await env.Error.WriteLineAsync($"rollreboot lab: pool {scenario.Pool.Name} with {scenario.Hosts.Count} hosts and {scenario.Vms.Count} VMs is ready; audit at {lab.AuditUrl}; Ctrl-C stops it");
        }
        else
        {
            var pools = string.Join("; ", lab.Pools.Select(p => $"{p.Name} ({p.HostAddresses.Count} hosts, audit at {p.AuditUrl})"));
            await env.Error.WriteLineAsync($"rollreboot lab: a fleet of {lab.Pools.Count} pools is ready: {pools}; one CloudStack for all; Ctrl-C stops it");
        }

        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, TimeProvider.System, stop.Token);
        }
        catch (OperationCanceledException)
        {
            // SIGINT or SIGTERM: a clean stop.
        }

        return ExitCodes.Success;
    }
}

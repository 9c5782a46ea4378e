using System.Globalization;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli;

/// <summary>
/// The lab started inside the CLI when no pool is configured: a new user's first run works with nothing to
/// set up, and says plainly that it is a simulation.
/// </summary>
internal sealed class EmbeddedLab : IAsyncDisposable
{
    public const string TimeScaleVariable = "ROLLREBOOT_LAB_TIME_SCALE";

    private readonly LabRuntime _lab;
    private readonly string _stateDir;

    private EmbeddedLab(LabRuntime lab, CliEnvironment environment, string label, string stateDir)
    {
        _lab = lab;
        Environment = environment;
        Label = label;
        _stateDir = stateDir;
    }

    public CliEnvironment Environment { get; }

    public string Label { get; }

    public static async Task<EmbeddedLab> StartAsync(CliEnvironment env, CancellationToken cancellationToken)
    {
        var scale = 500.0;
        if (env.Get(TimeScaleVariable) is { } text && (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out scale) || scale <= 0))
        {
            throw new UserFacingException($"{TimeScaleVariable}={text} is not a positive number");
        }

        var scenario = EmbeddedScenarios.Load();
        await env.Error.WriteLineAsync($"rollreboot: no pool configured ({EnvNames.XapiUrl} unset): using the embedded lab, a SIMULATED pool '{scenario.Pool.Name}' " +
            $"({scenario.Hosts.Count} hosts, {scenario.Vms.Count} VMs) at {scale.ToString(CultureInfo.InvariantCulture)}x speed. Nothing real is touched. See README to point rollreboot at a real pool.");
        var lab = await LabRuntime.StartAsync(scenario, scale, TextWriter.Null, cancellationToken);
        var stateDir = Directory.CreateTempSubdirectory("rollreboot-embedded-").FullName;
        var vars = new Dictionary<string, string>(lab.Environment) { [EnvNames.StateDir] = env.Get(EnvNames.StateDir) ?? stateDir };
        var overlay = new CliEnvironment
        {
            GetVariable = n => vars.TryGetValue(n, out var v) ? v : n.StartsWith("ROLLREBOOT_", StringComparison.Ordinal) ? null : env.GetVariable(n),
            Out = env.Out,
            Error = env.Error,
            IsTerminal = env.IsTerminal,
            ErrorIsTerminal = env.ErrorIsTerminal,
        };
        return new EmbeddedLab(lab, overlay, $"the embedded lab (scenario {scenario.Name})", stateDir);
    }

    public async ValueTask DisposeAsync()
    {
        await _lab.DisposeAsync();
        try
        {
            Directory.Delete(_stateDir, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}

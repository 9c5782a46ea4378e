namespace RollingReboot.Lab.Scenario;

/// <summary>Scenarios shipped inside the program: the embedded lab a new user runs against by default.</summary>
public static class EmbeddedScenarios
{
    public const string Default = "six-hosts-n-plus-1";

    public static ScenarioFile Load(string name = Default)
    {
        using var stream = typeof(EmbeddedScenarios).Assembly.GetManifestResourceStream($"scenarios/{name}.json")
            ?? throw new ScenarioException($"no embedded scenario named {name}");
        using var reader = new StreamReader(stream);
        return ScenarioLoader.Parse(reader.ReadToEnd(), "embedded:" + name);
    }
}

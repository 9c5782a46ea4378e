using System.Globalization;

namespace RollingReboot.CloudStack;

/// <summary>One server profile of CloudMonkey's config. <see cref="ToString"/> never shows the secret key or password.</summary>
public sealed class CloudMonkeyProfile
{
    internal CloudMonkeyProfile(string name, IReadOnlyDictionary<string, string> settings)
    {
        Name = name;
        Settings = settings;
    }

    public string Name { get; }

    /// <summary>Every key of the section, lowercased.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    public string? Url => Get("url");

    public string? ApiKey => Get("apikey");

    public string? SecretKey => Get("secretkey");

    public string? Username => Get("username");

    public string? Domain => Get("domain");

    public bool? VerifyCert => Get("verifycert")?.ToUpperInvariant() switch
    {
        "TRUE" or "YES" or "ON" or "1" => true,
        "FALSE" or "NO" or "OFF" or "0" => false,
        _ => null,
    };

    public int? TimeoutSeconds =>
        int.TryParse(Get("timeout"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) ? seconds : null;

    public override string ToString() =>
        $"CloudMonkey profile '{Name}' (url {Url ?? "(none)"}, apikey {CloudStackCredentials.Abbreviate(ApiKey)}, secret key hidden)";

    private string? Get(string key) => Settings.TryGetValue(key, out var value) && value.Length > 0 ? value : null;
}

/// <summary>
/// CloudMonkey's (<c>cmk</c>) INI config, <c>~/.cmk/config</c>: a <c>[core]</c> section whose <c>profile</c> names
/// the default, and one section per server profile (<c>url</c>, <c>apikey</c>, <c>secretkey</c>, ...).
/// </summary>
public sealed class CloudMonkeyConfig
{
    private const string CoreSection = "core";

    private CloudMonkeyConfig(string? defaultProfile, IReadOnlyDictionary<string, CloudMonkeyProfile> profiles)
    {
        DefaultProfile = defaultProfile;
        Profiles = profiles;
    }

    public static string DefaultPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cmk", "config");

    /// <summary>The <c>[core] profile</c> setting, when there is one.</summary>
    public string? DefaultProfile { get; }

    /// <summary>Profiles by section name (case-insensitive).</summary>
    public IReadOnlyDictionary<string, CloudMonkeyProfile> Profiles { get; }

    public static CloudMonkeyConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CloudStackConfigurationException($"Cannot read the CloudMonkey config '{path}': {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Parses the INI text leniently: <c>#</c> and <c>;</c> comment lines, blank lines, spaces around names and
    /// values, any case in section and key names, <c>=</c> or <c>:</c> separators, quoted values.
    /// </summary>
    public static CloudMonkeyConfig Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sections = new Dictionary<string, (string Name, Dictionary<string, string> Settings)>(StringComparer.OrdinalIgnoreCase);
        var current = GetSection(sections, CoreSection);
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim().TrimStart('\uFEFF');
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line[0] == '[')
            {
                var end = line.IndexOf(']', StringComparison.Ordinal);
                var name = Unquote((end > 0 ? line[1..end] : line[1..]).Trim());
                current = GetSection(sections, name);
                continue;
            }

            // A URL value holds ':', so '=' wins when there is one.
            var separator = line.IndexOf('=', StringComparison.Ordinal);
            if (separator < 0)
            {
                separator = line.IndexOf(':', StringComparison.Ordinal);
            }

            if (separator <= 0)
            {
                continue;
            }

            var key = line[..separator].Trim().ToLowerInvariant();
            current.Settings[key] = Unquote(line[(separator + 1)..].Trim());
        }

        sections.TryGetValue(CoreSection, out var core);
        var defaultProfile = core.Settings is not null && core.Settings.TryGetValue("profile", out var p) && p.Length > 0 ? p : null;
        var profiles = new Dictionary<string, CloudMonkeyProfile>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, section) in sections)
        {
            if (!string.Equals(name, CoreSection, StringComparison.OrdinalIgnoreCase) && name.Length > 0)
            {
                profiles[name] = new CloudMonkeyProfile(section.Name, section.Settings);
            }
        }

        return new CloudMonkeyConfig(defaultProfile, profiles);
    }

    /// <summary>The named profile, or the <c>[core]</c> default, or the only profile there is.</summary>
    /// <exception cref="CloudStackConfigurationException">No such profile, or no way to choose one.</exception>
    public CloudMonkeyProfile GetProfile(string? name = null)
    {
        var available = Profiles.Count == 0 ? "none" : string.Join(", ", Profiles.Values.Select(p => p.Name).Order(StringComparer.OrdinalIgnoreCase));
        var wanted = string.IsNullOrWhiteSpace(name) ? DefaultProfile : name.Trim();
        if (wanted is null)
        {
            if (Profiles.Count == 1)
            {
                return Profiles.Values.Single();
            }

            throw new CloudStackConfigurationException(
                $"The CloudMonkey config names no default profile ([core] profile = ...); choose one of: {available}.");
        }

        if (Profiles.TryGetValue(wanted, out var profile))
        {
            return profile;
        }

        throw new CloudStackConfigurationException(
            $"The CloudMonkey config has no profile '{wanted}'; its profiles: {available}.");
    }

    private static (string Name, Dictionary<string, string> Settings) GetSection(
        Dictionary<string, (string Name, Dictionary<string, string> Settings)> sections, string name)
    {
        if (!sections.TryGetValue(name, out var section))
        {
            section = (name, new Dictionary<string, string>(StringComparer.Ordinal));
            sections[name] = section;
        }

        return section;
    }

    private static string Unquote(string value) =>
        value.Length >= 2 && value[0] == value[^1] && value[0] is '"' or '\'' or '`' ? value[1..^1] : value;
}

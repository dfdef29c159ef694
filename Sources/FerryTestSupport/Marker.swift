enum FerryTestSupportMarker {}
